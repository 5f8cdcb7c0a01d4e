//! The main job: an MQTT cluster behind hapx, on loopback, ending by itself.
//!
//! Three embedded MQTT brokers (rumqttd), hapx in front of them with the classic
//! "HAProxy in front of an MQTT cluster" config (three servers, health checks), MQTT
//! clients that connect, subscribe and publish through hapx. Then one broker dies: its
//! clients reconnect at once and, with `option redispatch`, a connection refused by the dead
//! broker is retried on another one before any health check has noticed (without it, hapx
//! does what HAProxy does: it retries the same server after a one-second turn-around, and a
//! client fails once `retries` run out); hapx then marks the broker DOWN (HAProxy's words on
//! stderr); the broker comes back and is marked UP.
//!
//! Run: `cargo run --release --example demo`
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

const CLIENTS: usize = 9;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

/// An embedded rumqttd broker on `port`, running until the process ends.
fn start_broker(port: u16) {
    let listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], port));
    let connections = rumqttd::ConnectionSettings {
        connection_timeout_ms: 60000,
        max_payload_size: 20480,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = rumqttd::ServerSettings {
        name: format!("v4-{port}"),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    let config = rumqttd::Config {
        router: rumqttd::RouterConfig {
            max_connections: 10010,
            max_outgoing_packet_count: 200,
            max_segment_size: 104857600,
            max_segment_count: 10,
            ..Default::default()
        },
        v4: Some(HashMap::from([("1".to_string(), server)])),
        ..Default::default()
    };
    thread::spawn(move || {
        let mut broker = rumqttd::Broker::new(config);
        if let Err(e) = broker.start() {
            eprintln!("broker on {port} failed: {e}");
        }
    });
}

/// A plug between hapx and a broker: pulling it is how the demo "kills" the broker (the
/// port stops accepting and every connection through it is cut), and it can be put back.
struct Plug {
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Plug {
    fn start(public: u16, broker: u16) -> Plug {
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let (up2, conns2) = (up.clone(), conns.clone());
        thread::spawn(move || {
            let mut listener: Option<TcpListener> = None;
            loop {
                if up2.load(Ordering::Acquire) {
                    let l = match listener.take() {
                        Some(l) => l,
                        None => match TcpListener::bind(("127.0.0.1", public)) {
                            Ok(l) => {
                                let _ = l.set_nonblocking(true);
                                l
                            }
                            Err(_) => {
                                thread::sleep(Duration::from_millis(50));
                                continue;
                            }
                        },
                    };
                    if let Ok((client, _)) = l.accept() {
                        let _ = client.set_nonblocking(false);
                        if let Ok(server) = TcpStream::connect(("127.0.0.1", broker)) {
                            if let (Ok(c2), Ok(s2), Ok(kept)) =
                                (client.try_clone(), server.try_clone(), client.try_clone())
                            {
                                if let Ok(mut c) = conns2.lock() {
                                    c.push(kept);
                                }
                                pipe(client, s2);
                                pipe(server, c2);
                            }
                        }
                    } else {
                        thread::sleep(Duration::from_millis(5));
                    }
                    listener = Some(l);
                } else {
                    // Unplugged: no listener, connections refused.
                    listener = None;
                    thread::sleep(Duration::from_millis(20));
                }
            }
        });
        Plug { up, conns }
    }

    fn pull(&self) {
        self.up.store(false, Ordering::Release);
        if let Ok(mut c) = self.conns.lock() {
            for s in c.drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }

    fn push_back(&self) {
        self.up.store(true, Ordering::Release);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    thread::spawn(move || {
        let mut buf = [0u8; 16384];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// Which broker each new session went to: the server whose session count rose.
fn snapshot(servers: &[Arc<hapx::runtime::state::ServerState>]) -> Vec<u32> {
    servers.iter().map(|s| s.cur.load(Ordering::Acquire)).collect()
}

fn main() {
    let t0 = Instant::now();
    let say = |text: &str| println!("[{:>5.1}s] {text}", t0.elapsed().as_secs_f64());
    let brokers: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let plugs_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    for &b in &brokers {
        start_broker(b);
    }
    let plugs: Vec<Plug> = plugs_ports.iter().zip(&brokers).map(|(&p, &b)| Plug::start(p, b)).collect();
    let front = free_port();
    let config = format!(
        "global\n    maxconn 256\ndefaults\n    mode http\n    timeout connect 5000ms\n    timeout client 50000ms\n    timeout server 50000ms\nlisten mqtt\n    bind 127.0.0.1:{front}\n    mode tcp\n    option tcplog\n    option redispatch\n    balance leastconn\n{}",
        plugs_ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("    server broker_{} 127.0.0.1:{p} check inter 500ms fall 2 rise 2\n", i + 1))
            .collect::<String>()
    );
    say(&format!("3 MQTT brokers (rumqttd) on 127.0.0.1 ports {brokers:?}, hapx in front on 127.0.0.1:{front} with:"));
    println!("{config}");
    let mut vars = hapx::config::lexer::Vars::empty();
    let loaded =
        hapx::model::load_text("mqtt-cluster.cfg", config.as_bytes(), &mut vars, &hapx::model::LoadOptions::default());
    for d in &loaded.diagnostics {
        eprintln!("{}", hapx::check::render::haproxy_line(d, std::process::id()));
    }
    let running = match hapx::runtime::start(&loaded.config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start hapx: {e}");
            std::process::exit(1);
        }
    };
    let servers = running.shared.plan.backends[0].servers.clone();
    thread::sleep(Duration::from_millis(800));

    say(&format!("{CLIENTS} MQTT clients connect through hapx (leastconn):"));
    let received = Arc::new(AtomicUsize::new(0));
    let reconnects = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for i in 1..=CLIENTS {
        let before = snapshot(&servers);
        let mut opts = MqttOptions::new(format!("client-{i}"), "127.0.0.1", front);
        opts.set_keep_alive(Duration::from_secs(5));
        let (client, mut connection) = Client::new(opts, 64);
        let _ = client.subscribe("demo/#", QoS::AtLeastOnce);
        let (got, again) = (received.clone(), reconnects.clone());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let mut connected_once = false;
            for event in connection.iter() {
                match event {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        if connected_once {
                            again.fetch_add(1, Ordering::AcqRel);
                            println!("          client-{i} reconnected through hapx");
                        }
                        connected_once = true;
                        let _ = ready_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(_))) => {
                        got.fetch_add(1, Ordering::AcqRel);
                    }
                    Ok(_) => {}
                    Err(_) => thread::sleep(Duration::from_millis(300)),
                }
            }
        });
        let _ = ready_rx.recv_timeout(Duration::from_secs(5));
        let after = snapshot(&servers);
        let landed =
            before.iter().zip(&after).position(|(b, a)| a > b).map_or("?".to_string(), |k| format!("broker_{}", k + 1));
        println!("          client-{i} -> {landed}");
        clients.push(client);
    }
    thread::sleep(Duration::from_millis(500));
    for (i, c) in clients.iter().enumerate() {
        let _ = c.publish(format!("demo/{}", i + 1), QoS::AtLeastOnce, false, format!("hello from client-{}", i + 1));
    }
    thread::sleep(Duration::from_millis(800));
    say(&format!(
        "each client published once on demo/<n> and subscribed to demo/#: {} deliveries in all (3 per client: each broker delivers the messages of its own 3 clients; the brokers are not clustered)",
        received.load(Ordering::Acquire)
    ));

    say("broker_2 dies (its port closes and its connections are cut):");
    plugs[1].pull();
    thread::sleep(Duration::from_millis(3000));
    say(&format!(
        "{} clients reconnected; sessions per broker now: {:?}",
        reconnects.load(Ordering::Acquire),
        snapshot(&servers)
    ));

    say("broker_2 comes back:");
    plugs[1].push_back();
    thread::sleep(Duration::from_millis(2000));
    say(&format!("sessions per broker: {:?} (existing sessions stay where they are)", snapshot(&servers)));
    for c in &clients {
        let _ = c.disconnect();
    }
    thread::sleep(Duration::from_millis(300));
    running.stop(true);
    let _ = running.join();
    say("done");
    std::process::exit(0);
}
