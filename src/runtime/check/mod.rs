//! Health checks: the tcp-check engine (connect, send, expect) and its scheduler, on one
//! thread of its own, updating `ServerState::up` and reporting changes in HAProxy's words.
