//! MQTT through hapx: embedded rumqttd brokers (and mosquitto when installed) behind a
//! `listen` section, rumqttc clients publishing and subscribing with QoS 0, 1 and 2, and
//! leastconn spreading connections evenly over three brokers. Connections per broker are
//! counted in /proc/net/tcp (established sockets whose peer is the broker's port).
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use rumqttc::{Client, Event, MqttOptions, Outgoing, Packet, QoS};

/// Three mosquitto brokers on free ports, or None (with a note) when not installed.
fn mosquittos(n: usize) -> Option<(Vec<Proc>, Vec<u16>)> {
    need("mosquitto");
    let mut procs = Vec::new();
    let mut ports = Vec::new();
    for i in 0..n {
        let port = free_port();
        let dir = temp_dir(&format!("mosquitto{i}"));
        let conf = dir.join("mosquitto.conf");
        // mosquitto 2.0.11 with its default 20 in-flight messages stops delivering queued
        // QoS 2 messages to a subscriber (seen without hapx too), hence the larger window.
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\nmax_keepalive 600\nmax_inflight_messages 100\n"),
        )
        .expect("conf");
        let mut cmd = std::process::Command::new("mosquitto");
        cmd.arg("-c").arg(&conf);
        procs.push(Proc::start(&format!("mosquitto{i}"), cmd, &dir, &[port]));
        ports.push(port);
    }
    Some((procs, ports))
}

fn hapx_for(brokers: &[u16], balance: &str) -> (Proc, u16) {
    let port = free_port();
    let servers: String =
        brokers.iter().enumerate().map(|(i, p)| format!("    server broker_{i} 127.0.0.1:{p}\n")).collect();
    let cfg = format!(
        "global\n    maxconn 4096\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 120s\n    timeout server 120s\nlisten mqtt\n    bind 127.0.0.1:{port}\n    balance {balance}\n{servers}"
    );
    (start_hapx(&cfg, &[port]), port)
}

fn opts(id: &str, port: u16) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    o
}

/// Subscribes, publishes `n` messages at `qos` from another client, and checks the
/// subscriber got every payload, in order.
fn pubsub(port: u16, qos: QoS, n: usize) {
    let topic = format!("hapx/test/{qos:?}");
    let (sub, mut sub_conn) = Client::new(opts(&format!("sub-{qos:?}"), port), 100);
    sub.subscribe(&topic, qos).expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no SUBACK through hapx");
        if let Ok(Ok(Event::Incoming(Packet::SubAck(_)))) = sub_conn.recv_timeout(Duration::from_millis(500)) {
            break;
        }
    }
    let received = thread::spawn(move || {
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        while got.len() < n && Instant::now() < deadline {
            if let Ok(Ok(Event::Incoming(Packet::Publish(p)))) = sub_conn.recv_timeout(Duration::from_millis(200)) {
                got.push((p.qos, String::from_utf8_lossy(&p.payload).into_owned()));
            }
        }
        drop(sub);
        got
    });
    let (publ, mut pub_conn) = Client::new(opts(&format!("pub-{qos:?}"), port), 100);
    for i in 0..n {
        publ.publish(&topic, qos, false, format!("message {i} at {qos:?}")).expect("publish");
    }
    // Drive the publisher until every message is acknowledged (or flushed, for QoS 0).
    let mut done = 0;
    let deadline = Instant::now() + Duration::from_secs(15);
    while done < n && Instant::now() < deadline {
        match pub_conn.recv_timeout(Duration::from_millis(200)) {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) if qos == QoS::AtLeastOnce => done += 1,
            Ok(Ok(Event::Incoming(Packet::PubComp(_)))) if qos == QoS::ExactlyOnce => done += 1,
            Ok(Ok(Event::Outgoing(Outgoing::Publish(_)))) if qos == QoS::AtMostOnce => done += 1,
            _ => {}
        }
    }
    assert_eq!(done, n, "publisher saw {done} of {n} acknowledgements at {qos:?}");
    let got = received.join().expect("subscriber");
    let want: Vec<(QoS, String)> = (0..n).map(|i| (qos, format!("message {i} at {qos:?}"))).collect();
    assert_eq!(got, want, "subscriber through hapx at {qos:?}");
    drop(publ);
}

#[test]
fn rumqttd_pubsub_qos0_through_hapx() {
    let b = free_port();
    rumqttd(b);
    let (_h, port) = hapx_for(&[b], "roundrobin");
    pubsub(port, QoS::AtMostOnce, 50);
}

#[test]
fn rumqttd_pubsub_qos1_through_hapx() {
    let b = free_port();
    rumqttd(b);
    let (_h, port) = hapx_for(&[b], "roundrobin");
    pubsub(port, QoS::AtLeastOnce, 50);
}

#[test]
fn rumqttd_pubsub_qos2_through_hapx() {
    let b = free_port();
    rumqttd(b);
    let (_h, port) = hapx_for(&[b], "roundrobin");
    pubsub(port, QoS::ExactlyOnce, 50);
}

#[test]
fn mosquitto_pubsub_all_qos_through_hapx() {
    let Some((_procs, ports)) = mosquittos(1) else { return };
    let (_h, port) = hapx_for(&ports, "roundrobin");
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        pubsub(port, qos, 50);
    }
}

/// A raw MQTT 3.1.1 client: CONNECT, then CONNACK read; kept open by the caller.
fn mqtt_connect(port: u16, id: &str) -> TcpStream {
    let mut s = connect(port, Duration::from_secs(10));
    let mut var = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 120];
    var.extend_from_slice(&(id.len() as u16).to_be_bytes());
    var.extend_from_slice(id.as_bytes());
    let mut pkt = vec![0x10, var.len() as u8];
    pkt.extend_from_slice(&var);
    s.write_all(&pkt).expect("CONNECT");
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).unwrap_or_else(|e| panic!("CONNACK for {id}: {e}"));
    assert_eq!(ack, [0x20, 2, 0, 0], "CONNACK for {id}");
    s
}

/// Established connections whose peer is 127.0.0.1:port (hapx's side of its server links).
fn established_to(port: u16) -> usize {
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp").map_or(0, |t| {
        t.lines()
            .skip(1)
            .filter(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && f[2] == want && f[3] == "01"
            })
            .count()
    })
}

fn counts(brokers: &[u16]) -> Vec<usize> {
    brokers.iter().map(|&b| established_to(b)).collect()
}

fn assert_even(brokers: &[u16], total: usize, what: &str) {
    let even = total / brokers.len();
    let ok = |c: &[usize]| c.iter().sum::<usize>() == total && c.iter().all(|&x| x + 1 >= even && x <= even + 1);
    wait_until(Duration::from_secs(5), || ok(&counts(brokers)));
    let c = counts(brokers);
    assert!(ok(&c), "{what}: connections per broker {c:?}, want {total} within ±1 of {even} each");
}

/// 300 clients spread within ±1 of even; then every third client (all on one broker under
/// round-robin) leaves and 100 more come: leastconn must fill the emptied slots.
fn leastconn_spread(brokers: &[u16]) {
    let (_h, port) = hapx_for(brokers, "leastconn");
    let mut clients: Vec<Option<TcpStream>> = (0..300).map(|i| Some(mqtt_connect(port, &format!("cid-{i}")))).collect();
    assert_even(brokers, 300, "after 300 clients");
    for (i, c) in clients.iter_mut().enumerate() {
        if i % 3 == 0 {
            *c = None;
        }
    }
    assert!(
        wait_until(Duration::from_secs(5), || counts(brokers).iter().sum::<usize>() == 200),
        "closed clients not closed at the brokers: {:?}",
        counts(brokers)
    );
    for i in 300..400 {
        clients.push(Some(mqtt_connect(port, &format!("cid-{i}"))));
    }
    assert_even(brokers, 300, "after 100 left and 100 more came");
}

#[test]
fn rumqttd_leastconn_spreads_300_clients_evenly() {
    let brokers: Vec<u16> = (0..3).map(|_| free_port()).collect();
    for &b in &brokers {
        rumqttd(b);
    }
    leastconn_spread(&brokers);
}

#[test]
fn mosquitto_leastconn_spreads_300_clients_evenly() {
    let Some((_procs, ports)) = mosquittos(3) else { return };
    leastconn_spread(&ports);
}

#[test]
fn rumqttd_roundrobin_spreads_300_clients_evenly() {
    // What works today with the temporary balancer; leastconn's test above is the goal.
    let brokers: Vec<u16> = (0..3).map(|_| free_port()).collect();
    for &b in &brokers {
        rumqttd(b);
    }
    let (_h, port) = hapx_for(&brokers, "roundrobin");
    let _clients: Vec<TcpStream> = (0..300).map(|i| mqtt_connect(port, &format!("rr-{i}"))).collect();
    assert_even(&brokers, 300, "roundrobin, 300 clients");
}
