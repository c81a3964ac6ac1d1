//! A fault-injecting HTTP/1.1 proxy in front of a real server (a real TCP proxy, not a mock).
//!
//! Each request from a client (several per connection: keep-alive) is read whole, a [`Fault`] is
//! chosen for it by the [`FaultPlan`] (only for `POST …/chat/completions`; everything else
//! passes), and unless the fault says otherwise it is forwarded upstream over a fresh connection
//! with `Connection: close`. The upstream response is read whole and written back with a
//! `Content-Length` (a chunked upstream body is de-chunked), so a streamed response arrives all at
//! once. An upstream that cannot be reached is answered `502` with a JSON error body.
//!
//! The counters ([`FaultProxy::stats`]) tell a test what really reached the server.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the proxy does with one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward it and answer with the upstream response, untouched.
    Pass,
    /// Read the request, then close the client connection without answering (not forwarded).
    Drop,
    /// Answer `429 Too Many Requests` with `Retry-After: retry_after_s` and a JSON error body
    /// (not forwarded).
    TooMany { retry_after_s: u64 },
    /// Answer `500 Internal Server Error` with a JSON error body (not forwarded).
    ServerError,
    /// Forward it (the server does the work), but answer `200`, `application/json`, with a
    /// truncated body that does not parse.
    Malformed,
    /// Forward it, send the response's status line and headers, stall `delay_ms`, then send the
    /// body: a client whose read timeout is shorter times out reading the body.
    Slow { delay_ms: u64 },
    /// Forward it, send the first half of the response (headers and part of the body, which
    /// promises more with its `Content-Length`), then shut the connection down.
    Reset,
}

impl Fault {
    /// The kind, as the counters name it: `pass`, `drop`, `too_many`, `server_error`,
    /// `malformed`, `slow`, `reset`.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Pass => "pass",
            Fault::Drop => "drop",
            Fault::TooMany { .. } => "too_many",
            Fault::ServerError => "server_error",
            Fault::Malformed => "malformed",
            Fault::Slow { .. } => "slow",
            Fault::Reset => "reset",
        }
    }

    /// Whether the request reaches the server under this fault.
    pub fn forwards(&self) -> bool {
        !matches!(
            self,
            Fault::Drop | Fault::TooMany { .. } | Fault::ServerError
        )
    }
}

/// The garbage body [`Fault::Malformed`] answers with.
pub const MALFORMED_BODY: &str = "{\"choices\": [ {\"mess";

type PlanFn = Box<dyn FnMut(usize, &RequestHead) -> Fault + Send>;

/// Which fault each matching request (`POST …/chat/completions`) gets; the index counts matching
/// requests only, from 0.
pub struct FaultPlan(PlanFn);

impl FaultPlan {
    /// Every request passes.
    pub fn pass() -> FaultPlan {
        Self::always(Fault::Pass)
    }

    /// The n-th matching request gets `faults[n]`; after the list, `Pass`.
    pub fn sequence(faults: Vec<Fault>) -> FaultPlan {
        FaultPlan(Box::new(move |i, _| {
            faults.get(i).cloned().unwrap_or(Fault::Pass)
        }))
    }

    /// Every `n`-th matching request (the n-th, 2n-th, …) gets `fault`; the others pass.
    pub fn every(n: usize, fault: Fault) -> FaultPlan {
        assert!(n > 0, "every(0, ..)");
        FaultPlan(Box::new(move |i, _| {
            if (i + 1) % n == 0 {
                fault.clone()
            } else {
                Fault::Pass
            }
        }))
    }

    /// Every matching request gets `fault`.
    pub fn always(fault: Fault) -> FaultPlan {
        FaultPlan(Box::new(move |_, _| fault.clone()))
    }

    /// Anything else: called with the index and the request (method, path, headers, body).
    pub fn from_fn(f: impl FnMut(usize, &RequestHead) -> Fault + Send + 'static) -> FaultPlan {
        FaultPlan(Box::new(f))
    }
}

/// One request as the proxy read it.
#[derive(Clone, Debug)]
pub struct RequestHead {
    pub method: String,
    /// The request target as sent (`/v1/chat/completions`, maybe with a query).
    pub path: String,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RequestHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, if it is.
    pub fn body_json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or(&self.path)
    }

    /// Whether faults apply: `POST …/chat/completions`.
    pub fn is_chat(&self) -> bool {
        self.method == "POST" && self.path_only().ends_with("/chat/completions")
    }
}

/// What happened to one request.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    /// Order of arrival at the proxy, from 0, over all requests.
    pub seq: usize,
    /// Which client connection (from 0) it came on.
    pub connection: usize,
    pub method: String,
    pub path: String,
    pub body: String,
    /// The fault chosen (`Pass` for requests faults do not apply to).
    pub fault: Fault,
    /// Whether it reached the server (`Some(status)` of the server's answer) or not (`None`:
    /// not forwarded, or the server could not be reached).
    pub upstream_status: Option<u16>,
}

/// The counters: what the proxy saw, injected and forwarded.
#[derive(Clone, Debug, Default)]
pub struct ProxyStats {
    /// Client connections accepted.
    pub connections: usize,
    /// Requests seen, per path (query included), all methods.
    pub requests_by_path: BTreeMap<String, usize>,
    /// Faults chosen for matching requests, per [`Fault::kind`] (`pass` included).
    pub faults: BTreeMap<&'static str, usize>,
    /// Requests forwarded upstream that the server answered, per path.
    pub forwarded_by_path: BTreeMap<String, usize>,
    /// Requests the proxy tried to forward but could not (the server down, or its answer cut
    /// short): answered 502.
    pub upstream_errors: usize,
    /// Every request, in order of arrival.
    pub requests: Vec<RequestRecord>,
}

impl ProxyStats {
    /// Requests seen on any path ending with `suffix`.
    pub fn seen(&self, suffix: &str) -> usize {
        sum_suffix(&self.requests_by_path, suffix)
    }

    /// Requests answered by the server on any path ending with `suffix`.
    pub fn forwarded(&self, suffix: &str) -> usize {
        sum_suffix(&self.forwarded_by_path, suffix)
    }

    /// All requests answered by the server.
    pub fn forwarded_total(&self) -> usize {
        self.forwarded_by_path.values().sum()
    }

    /// How often this kind of fault was chosen.
    pub fn fault_count(&self, kind: &str) -> usize {
        self.faults.get(kind).copied().unwrap_or(0)
    }

    /// Faults other than `pass` injected.
    pub fn faults_injected(&self) -> usize {
        self.faults
            .iter()
            .filter(|(k, _)| **k != "pass")
            .map(|(_, n)| n)
            .sum()
    }

    /// The bodies of the chat requests the server answered, in order.
    pub fn forwarded_chat_bodies(&self) -> Vec<String> {
        self.requests
            .iter()
            .filter(|r| r.upstream_status.is_some() && r.path.ends_with("/chat/completions"))
            .map(|r| r.body.clone())
            .collect()
    }
}

fn sum_suffix(map: &BTreeMap<String, usize>, suffix: &str) -> usize {
    map.iter()
        .filter(|(p, _)| p.split('?').next().unwrap_or(p).ends_with(suffix))
        .map(|(_, n)| n)
        .sum()
}

struct Shared {
    upstream: SocketAddr,
    plan: Mutex<FaultPlan>,
    chat_index: AtomicUsize,
    seq: AtomicUsize,
    stats: Mutex<ProxyStats>,
    stop: AtomicBool,
    /// Faults apply to `GET …/models` too, not only to chat requests.
    listing: bool,
    /// The client connections, to shut down when the proxy goes.
    clients: Mutex<Vec<TcpStream>>,
}

/// The proxy: listens on a free 127.0.0.1 port until dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (`"127.0.0.1:PORT"` or a `SocketAddr`).
    pub fn start(upstream: impl ToSocketAddrs, plan: FaultPlan) -> FaultProxy {
        Self::start_inner(upstream, plan, false)
    }

    /// Like [`start`](Self::start), with the faults applied to `GET …/models` requests as well
    /// as to chat requests (a slow or broken model list).
    pub fn start_with_listing(upstream: impl ToSocketAddrs, plan: FaultPlan) -> FaultProxy {
        Self::start_inner(upstream, plan, true)
    }

    fn start_inner(upstream: impl ToSocketAddrs, plan: FaultPlan, listing: bool) -> FaultProxy {
        let upstream = upstream
            .to_socket_addrs()
            .expect("resolving the upstream address")
            .next()
            .expect("an upstream address");
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let shared = Arc::new(Shared {
            upstream,
            plan: Mutex::new(plan),
            chat_index: AtomicUsize::new(0),
            seq: AtomicUsize::new(0),
            stats: Mutex::new(ProxyStats::default()),
            stop: AtomicBool::new(false),
            listing,
            clients: Mutex::new(Vec::new()),
        });
        let accept = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("fault-proxy-{}", addr.port()))
                .spawn(move || accept_loop(&listener, &shared))
                .expect("spawning the proxy's accept thread")
        };
        FaultProxy {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PROXYPORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// `http://127.0.0.1:PROXYPORT`.
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// A copy of the counters now.
    pub fn stats(&self) -> ProxyStats {
        self.shared.stats.lock().unwrap().clone()
    }

    /// A new plan from now on; the index of matching requests starts again from 0.
    pub fn set_plan(&self, plan: FaultPlan) {
        let mut guard = self.shared.plan.lock().unwrap();
        *guard = plan;
        self.shared.chat_index.store(0, Ordering::SeqCst);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Unblock accept() with a connection of our own.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(handle) = self.accept.take() {
            let _ = handle.join();
        }
        for client in self.shared.clients.lock().unwrap().drain(..) {
            let _ = client.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut n = 0usize;
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let connection = n;
        n += 1;
        shared.stats.lock().unwrap().connections += 1;
        if let Ok(clone) = stream.try_clone() {
            shared.clients.lock().unwrap().push(clone);
        }
        let shared = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name(format!("fault-proxy-conn-{connection}"))
            .spawn(move || {
                let _ = serve_connection(stream, connection, &shared);
            });
        if spawned.is_err() {
            eprintln!("fault proxy: could not spawn a thread for connection {connection}");
        }
    }
}

/// Serves one client connection: request after request until the client closes, asks to close,
/// or a fault closes it.
fn serve_connection(stream: TcpStream, connection: usize, shared: &Shared) -> io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let Some(req) = read_request(&mut reader)? else {
            return Ok(());
        };
        if shared.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let client_close = req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let seq = shared.seq.fetch_add(1, Ordering::SeqCst);
        let faultable = req.is_chat()
            || (shared.listing
                && req
                    .path
                    .split('?')
                    .next()
                    .unwrap_or("")
                    .ends_with("/models"));
        let fault = if faultable {
            let i = shared.chat_index.fetch_add(1, Ordering::SeqCst);
            let mut plan = shared.plan.lock().unwrap();
            (plan.0)(i, &req)
        } else {
            Fault::Pass
        };
        {
            let mut stats = shared.stats.lock().unwrap();
            *stats.requests_by_path.entry(req.path.clone()).or_default() += 1;
            if faultable {
                *stats.faults.entry(fault.kind()).or_default() += 1;
            }
            stats.requests.push(RequestRecord {
                seq,
                connection,
                method: req.method.clone(),
                path: req.path.clone(),
                body: req.body_text(),
                fault: fault.clone(),
                upstream_status: None,
            });
        }
        let record_upstream = |status: Option<u16>| {
            let mut stats = shared.stats.lock().unwrap();
            match status {
                Some(code) => {
                    *stats.forwarded_by_path.entry(req.path.clone()).or_default() += 1;
                    if let Some(r) = stats.requests.iter_mut().find(|r| r.seq == seq) {
                        r.upstream_status = Some(code);
                    }
                }
                None => stats.upstream_errors += 1,
            }
        };

        match &fault {
            Fault::Drop => {
                let _ = writer.shutdown(Shutdown::Both);
                return Ok(());
            }
            Fault::TooMany { retry_after_s } => {
                let body = error_body("fault proxy: too many requests", "rate_limit_error", 429);
                let extra = [("Retry-After".to_string(), retry_after_s.to_string())];
                write_simple(
                    &mut writer,
                    429,
                    "Too Many Requests",
                    &extra,
                    &body,
                    client_close,
                )?;
            }
            Fault::ServerError => {
                let body = error_body("fault proxy: internal server error", "server_error", 500);
                write_simple(
                    &mut writer,
                    500,
                    "Internal Server Error",
                    &[],
                    &body,
                    client_close,
                )?;
            }
            Fault::Pass | Fault::Malformed | Fault::Slow { .. } | Fault::Reset => {
                let resp = match forward(shared.upstream, &req) {
                    Ok(resp) => {
                        record_upstream(Some(resp.status));
                        resp
                    }
                    Err(e) => {
                        record_upstream(None);
                        let body = error_body(
                            &format!("fault proxy: upstream {} unreachable: {e}", shared.upstream),
                            "bad_gateway",
                            502,
                        );
                        write_simple(&mut writer, 502, "Bad Gateway", &[], &body, client_close)?;
                        if client_close {
                            return Ok(());
                        }
                        continue;
                    }
                };
                match &fault {
                    Fault::Malformed => {
                        let headers =
                            [("Content-Type".to_string(), "application/json".to_string())];
                        write_simple(
                            &mut writer,
                            200,
                            "OK",
                            &headers,
                            MALFORMED_BODY,
                            client_close,
                        )?;
                    }
                    Fault::Slow { delay_ms } => {
                        let (head, body) = resp.encode(client_close);
                        writer.write_all(&head)?;
                        writer.flush()?;
                        std::thread::sleep(Duration::from_millis(*delay_ms));
                        writer.write_all(&body)?;
                        writer.flush()?;
                    }
                    Fault::Reset => {
                        let (head, body) = resp.encode(client_close);
                        let head_len = head.len();
                        let mut all = head;
                        all.extend_from_slice(&body);
                        // Half of it: the headers and some of the body where the body allows,
                        // never all of it.
                        let cut = if body.len() >= 2 {
                            (all.len() / 2).clamp(head_len + 1, all.len() - 1)
                        } else {
                            all.len() / 2
                        };
                        writer.write_all(&all[..cut])?;
                        writer.flush()?;
                        let _ = writer.shutdown(Shutdown::Both);
                        return Ok(());
                    }
                    _ => {
                        let (head, body) = resp.encode(client_close);
                        writer.write_all(&head)?;
                        writer.write_all(&body)?;
                        writer.flush()?;
                    }
                }
            }
        }
        if client_close {
            let _ = writer.shutdown(Shutdown::Both);
            return Ok(());
        }
    }
}

fn error_body(message: &str, kind: &str, code: u16) -> String {
    serde_json::json!({"error": {"message": message, "type": kind, "code": code}}).to_string()
}

fn write_simple(
    w: &mut TcpStream,
    status: u16,
    reason: &str,
    extra: &[(String, String)],
    body: &str,
    close: bool,
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    let has_type = extra
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
    if !has_type {
        head.push_str("Content-Type: application/json; charset=utf-8\r\n");
    }
    for (n, v) in extra {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    head.push_str(if close {
        "Connection: close\r\n"
    } else {
        "Connection: keep-alive\r\n"
    });
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.write_all(body.as_bytes())?;
    w.flush()
}

/// A line ending in CRLF (or LF), without it; `None` at EOF before any byte.
fn read_line(r: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = r.read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn read_headers(r: &mut impl BufRead) -> io::Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    loop {
        let line = read_line(r)?.ok_or_else(|| bad("EOF in headers"))?;
        if line.is_empty() {
            return Ok(headers);
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn is_chunked(headers: &[(String, String)]) -> bool {
    header(headers, "transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
}

fn content_length(headers: &[(String, String)]) -> io::Result<Option<usize>> {
    header(headers, "content-length")
        .map(|v| {
            v.parse()
                .map_err(|e| bad(format!("bad Content-Length {v:?}: {e}")))
        })
        .transpose()
}

/// A chunked body, de-chunked (trailers dropped).
fn read_chunked(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(r)?.ok_or_else(|| bad("EOF in chunked body"))?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|e| bad(format!("bad chunk size {line:?}: {e}")))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while let Some(l) = read_line(r)? {
                if l.is_empty() {
                    break;
                }
            }
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        read_line(r)?;
    }
}

/// The next request on a connection; `None` when the client closed it between requests.
fn read_request(r: &mut impl BufRead) -> io::Result<Option<RequestHead>> {
    let line = loop {
        match read_line(r)? {
            None => return Ok(None),
            // Tolerate stray empty lines between requests (RFC 9112 2.2).
            Some(l) if l.is_empty() => {}
            Some(l) => break l,
        }
    };
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Err(bad(format!("bad request line {line:?}")));
    };
    let headers = read_headers(r)?;
    let body = if is_chunked(&headers) {
        read_chunked(r)?
    } else {
        let n = content_length(&headers)?.unwrap_or(0);
        let mut body = vec![0; n];
        r.read_exact(&mut body)?;
        body
    };
    Ok(Some(RequestHead {
        method: method.to_string(),
        path: path.to_string(),
        headers,
        body,
    }))
}

/// The server's answer, read whole.
struct Response {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Headers that describe one hop's connection or framing, which the proxy redoes.
const HOP_HEADERS: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "content-length",
    "upgrade",
];

impl Response {
    /// Status line and headers, and the body, for the client: framed by Content-Length.
    fn encode(&self, close: bool) -> (Vec<u8>, Vec<u8>) {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, self.reason);
        for (n, v) in &self.headers {
            if !HOP_HEADERS.contains(&n.as_str()) {
                head.push_str(&format!("{n}: {v}\r\n"));
            }
        }
        head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        head.push_str(if close {
            "Connection: close\r\n"
        } else {
            "Connection: keep-alive\r\n"
        });
        head.push_str("\r\n");
        (head.into_bytes(), self.body.clone())
    }
}

/// Sends the request upstream over a new connection (`Connection: close`) and reads the answer.
fn forward(upstream: SocketAddr, req: &RequestHead) -> io::Result<Response> {
    let mut up = TcpStream::connect_timeout(&upstream, Duration::from_secs(5))?;
    up.set_read_timeout(Some(Duration::from_secs(600)))?;
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.path);
    for (n, v) in &req.headers {
        if !HOP_HEADERS.contains(&n.as_str()) {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
    }
    head.push_str(&format!("Content-Length: {}\r\n", req.body.len()));
    head.push_str("Connection: close\r\n\r\n");
    up.write_all(head.as_bytes())?;
    up.write_all(&req.body)?;
    up.flush()?;

    let mut r = BufReader::new(up);
    let line = read_line(&mut r)?.ok_or_else(|| bad("upstream closed without answering"))?;
    let mut parts = line.splitn(3, ' ');
    let _version = parts.next();
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {line:?}")))?;
    let reason = parts.next().unwrap_or("").to_string();
    let headers = read_headers(&mut r)?;
    let body =
        if req.method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status) {
            Vec::new()
        } else if is_chunked(&headers) {
            read_chunked(&mut r)?
        } else if let Some(n) = content_length(&headers)? {
            let mut body = vec![0; n];
            r.read_exact(&mut body)?;
            body
        } else {
            let mut body = Vec::new();
            r.read_to_end(&mut body)?;
            body
        };
    Ok(Response {
        status,
        reason,
        headers,
        body,
    })
}
