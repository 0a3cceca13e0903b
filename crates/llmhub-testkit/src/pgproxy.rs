//! A PostgreSQL wire-protocol proxy for fault tests: it sits between the sink and a real server,
//! reads the protocol message by message in both directions, and lets a test decide for each
//! message whether it passes, is swallowed, or ends the connection (before or after it), or
//! whether the connection goes silent while staying open (a black hole: a network partition, a
//! server frozen mid-query).
//!
//! Only plaintext connections can be inspected (`sslmode=disable` in the URL given to the sink):
//! a connection that negotiates TLS is relayed byte for byte, untouched.
//!
//! Messages are framed as the protocol defines them: the client's first message (startup,
//! `SSLRequest`, `CancelRequest`) has no type byte; every later message in either direction is a
//! type byte and a big-endian length that counts itself.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Which way a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// From the client (the sink) to the server.
    ToServer,
    /// From the server to the client.
    ToClient,
}

/// What the proxy does with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Pass it on.
    Forward,
    /// Drop it; the connection goes on.
    Swallow,
    /// Close both sides without passing it on.
    CutBefore,
    /// Pass it on, then close both sides.
    CutAfter,
    /// Pass it on, then pass nothing more either way while keeping both sides open, until the
    /// proxy is dropped or [`PgProxy::release_held`] is called.
    BlackHoleAfter,
}

/// One protocol message as the rule sees it.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// Its direction.
    pub dir: Dir,
    /// The type byte (`b'Q'` query, `b'd'` CopyData, `b'c'` CopyDone, `b'S'` Sync, `b'C'`
    /// CommandComplete, `b'Z'` ReadyForQuery...); 0 for the untyped startup message.
    pub kind: u8,
    /// The payload after the length.
    pub body: &'a [u8],
    /// Number of the connection through the proxy, from 0.
    pub connection: u64,
}

impl Message<'_> {
    /// A `Query` or `CommandComplete` text (without its NUL), or "" for other messages.
    pub fn text(&self) -> &str {
        match self.kind {
            b'Q' | b'C' => std::str::from_utf8(self.body.strip_suffix(&[0]).unwrap_or(self.body)).unwrap_or(""),
            _ => "",
        }
    }
}

/// Decides the fate of every message of every connection; called in arrival order per
/// direction, under one lock for the whole proxy.
pub type Rule = Box<dyn FnMut(&Message<'_>) -> Action + Send>;

struct Shared {
    upstream: SocketAddr,
    rule: Mutex<Rule>,
    connections: AtomicU64,
    faults: AtomicU64,
    /// Connection halves kept open by a black hole.
    held: Mutex<Vec<(OwnedReadHalf, OwnedWriteHalf)>>,
}

/// The running proxy; stops (and closes every connection) when dropped.
pub struct PgProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl PgProxy {
    /// Listens on a free loopback port and relays each connection to `upstream` under `rule`.
    pub async fn start(upstream: SocketAddr, rule: Rule) -> std::io::Result<PgProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            rule: Mutex::new(rule),
            connections: AtomicU64::new(0),
            faults: AtomicU64::new(0),
            held: Mutex::new(Vec::new()),
        });
        let stop = CancellationToken::new();
        let (s, token) = (shared.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let client = tokio::select! {
                    _ = token.cancelled() => break,
                    accepted = listener.accept() => match accepted {
                        Ok((c, _)) => c,
                        Err(_) => continue,
                    },
                };
                let n = s.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(relay(s.clone(), client, n, token.child_token()));
            }
            if let Ok(mut held) = s.held.lock() {
                held.clear();
            }
        });
        Ok(PgProxy { addr, shared, stop })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Messages the rule answered with anything but [`Action::Forward`].
    pub fn faults(&self) -> u64 {
        self.shared.faults.load(Ordering::SeqCst)
    }

    /// Closes the connections a black hole keeps open.
    pub fn release_held(&self) {
        if let Ok(mut held) = self.shared.held.lock() {
            held.clear();
        }
    }
}

/// Reads one typed message: type byte, length, payload.
async fn read_typed(r: &mut (impl AsyncRead + Unpin)) -> std::io::Result<(u8, Vec<u8>)> {
    let kind = r.read_u8().await?;
    let len = r.read_u32().await? as usize;
    if len < 4 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "message length under 4",
        ));
    }
    let mut body = vec![0u8; len - 4];
    r.read_exact(&mut body).await?;
    Ok((kind, body))
}

fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    if kind != 0 {
        out.push(kind);
    }
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// What one direction's loop ended with.
enum End {
    /// Closed (EOF, an error, a cut, or the proxy stopping).
    Closed,
    /// A black hole: keep both halves open.
    Hold(OwnedReadHalf, OwnedWriteHalf),
}

async fn relay(shared: Arc<Shared>, client: TcpStream, connection: u64, stop: CancellationToken) {
    let Ok(server) = TcpStream::connect(shared.upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    // The client's untyped first messages: SSLRequest (answered by one byte), then startup.
    loop {
        let Ok(len) = cr.read_u32().await else { return };
        let mut body = vec![0u8; (len as usize).saturating_sub(4)];
        if cr.read_exact(&mut body).await.is_err() {
            return;
        }
        let code = body.get(..4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
        if sw.write_all(&frame(0, &body)).await.is_err() {
            return;
        }
        match code {
            // SSLRequest or GSSENCRequest: one byte back, then TLS or another startup.
            Some(80_877_103) | Some(80_877_104) => {
                let Ok(answer) = sr.read_u8().await else { return };
                if cw.write_all(&[answer]).await.is_err() {
                    return;
                }
                if answer == b'S' || answer == b'G' {
                    // Encrypted: relay bytes untouched.
                    let mut client = cr.reunite(cw).expect("halves of one stream");
                    let mut server = sr.reunite(sw).expect("halves of one stream");
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    return;
                }
            }
            _ => break,
        }
    }
    let conn = Arc::new(Conn {
        cut: stop.child_token(),
        hold: AtomicBool::new(false),
    });
    let up = pump(shared.clone(), Dir::ToServer, cr, sw, connection, conn.clone());
    let down = pump(shared.clone(), Dir::ToClient, sr, cw, connection, conn);
    let (a, b) = tokio::join!(up, down);
    if let (End::Hold(cr, sw), End::Hold(sr, cw)) = (a, b) {
        if let Ok(mut held) = shared.held.lock() {
            held.push((cr, cw));
            held.push((sr, sw));
        }
    }
}

/// One relayed connection's state shared by its two directions.
struct Conn {
    /// Cancelled to end both directions.
    cut: CancellationToken,
    /// Set before `cut` by a black hole: the directions hand back their halves, still open.
    hold: AtomicBool,
}

impl Conn {
    fn end(&self, from: OwnedReadHalf, to: OwnedWriteHalf) -> End {
        if self.hold.load(Ordering::SeqCst) {
            End::Hold(from, to)
        } else {
            End::Closed
        }
    }
}

/// Relays one direction message by message under the rule. Ends both directions on a cut; on a
/// black hole, both directions stop and hand back their halves.
async fn pump(
    shared: Arc<Shared>,
    dir: Dir,
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    connection: u64,
    conn: Arc<Conn>,
) -> End {
    loop {
        let read = tokio::select! {
            _ = conn.cut.cancelled() => return conn.end(from, to),
            r = read_typed(&mut from) => r,
        };
        let Ok((kind, body)) = read else {
            conn.cut.cancel();
            return End::Closed;
        };
        let action = {
            let msg = Message {
                dir,
                kind,
                body: &body,
                connection,
            };
            match shared.rule.lock() {
                Ok(mut rule) => rule(&msg),
                Err(p) => p.into_inner()(&msg),
            }
        };
        if action != Action::Forward {
            shared.faults.fetch_add(1, Ordering::SeqCst);
        }
        if action == Action::Swallow {
            continue;
        }
        if action == Action::CutBefore {
            conn.cut.cancel();
            return End::Closed;
        }
        if to.write_all(&frame(kind, &body)).await.is_err() {
            conn.cut.cancel();
            return End::Closed;
        }
        match action {
            Action::CutAfter => {
                let _ = to.flush().await;
                conn.cut.cancel();
                return End::Closed;
            }
            Action::BlackHoleAfter => {
                let _ = to.flush().await;
                conn.hold.store(true, Ordering::SeqCst);
                conn.cut.cancel();
                return End::Hold(from, to);
            }
            _ => {}
        }
    }
}
