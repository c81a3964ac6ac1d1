//! A real llama.cpp `llama-server` process for the tests of the served-model backend (an
//! OpenAI-compatible `/v1/chat/completions`), built by `scripts/build-llama-server.sh`.
//!
//! The binary is `$ALIGNDIFF_LLAMA_SERVER`, else the newest
//! `$ALIGNDIFF_TOOLS/llama.cpp-*/bin/llama-server` (`ALIGNDIFF_TOOLS` defaults to
//! `~/.cache/aligndiff/tools`). A missing binary fails the test, unless
//! `ALIGNDIFF_SKIP_SERVER_TESTS=1`: then [`binary_or_skip`] (and [`LlamaServer::start_or_skip`])
//! say so loudly and return `None`, and the test returns early.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer `GET /health` with 200 (loading the model included).
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);

const SKIP_VAR: &str = "ALIGNDIFF_SKIP_SERVER_TESTS";

/// Where a `llama-server` binary is, or why there is none.
fn find_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("ALIGNDIFF_LLAMA_SERVER") {
        let path = PathBuf::from(path);
        // Naming a binary that is not there is a mistake, never a reason to skip.
        assert!(
            path.is_file(),
            "ALIGNDIFF_LLAMA_SERVER={} is not a file",
            path.display()
        );
        return Ok(path);
    }
    let tools = std::env::var_os("ALIGNDIFF_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").expect("HOME is not set"))
                .join(".cache/aligndiff/tools")
        });
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    if let Ok(entries) = std::fs::read_dir(&tools) {
        for entry in entries.flatten() {
            if !entry
                .file_name()
                .to_string_lossy()
                .starts_with("llama.cpp-")
            {
                continue;
            }
            let bin = entry.path().join("bin/llama-server");
            let Ok(modified) = bin.metadata().and_then(|m| m.modified()) else {
                continue;
            };
            if newest.as_ref().is_none_or(|(t, _)| modified > *t) {
                newest = Some((modified, bin));
            }
        }
    }
    newest.map(|(_, bin)| bin).ok_or_else(|| {
        format!(
            "no llama-server binary: ALIGNDIFF_LLAMA_SERVER is not set and there is none under {}/llama.cpp-*/bin/",
            tools.display()
        )
    })
}

fn missing(why: &str) -> ! {
    panic!(
        "{why}; run scripts/build-llama-server.sh first \
         (or set {SKIP_VAR}=1 to skip the tests that need it)"
    )
}

/// The `llama-server` binary; panics (saying to run `scripts/build-llama-server.sh`) when there
/// is none, whatever `ALIGNDIFF_SKIP_SERVER_TESTS` says.
pub fn binary() -> PathBuf {
    find_binary().unwrap_or_else(|why| missing(&why))
}

/// The `llama-server` binary, or `None` (after a loud "skipping: …" on stderr) when there is
/// none and `ALIGNDIFF_SKIP_SERVER_TESTS=1`. Without that variable a missing binary panics: a
/// test that silently skips cannot fail.
pub fn binary_or_skip() -> Option<PathBuf> {
    match find_binary() {
        Ok(path) => Some(path),
        Err(why) if std::env::var(SKIP_VAR).is_ok_and(|v| v == "1") => {
            eprintln!("skipping: {why} ({SKIP_VAR}=1); scripts/build-llama-server.sh builds it");
            None
        }
        Err(why) => missing(&why),
    }
}

/// How to start the server.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Parallel slots (`-np`).
    pub parallel: usize,
    /// The whole context (`-c`). Without a unified KV cache (`--kv-unified`, off when `-np` is
    /// given) llama-server splits it evenly across the slots: each request gets `ctx / parallel`.
    pub ctx: usize,
    /// Render prompts with the GGUF's own Jinja chat template (`--jinja`, else `--no-jinja`).
    pub jinja: bool,
    /// The served model name (`-a`); without it the server reports the GGUF's file name.
    pub alias: Option<String>,
    /// A fixed port; `None` picks a free one.
    pub port: Option<u16>,
    /// Requests must carry `Authorization: Bearer KEY` (`--api-key`).
    pub api_key: Option<String>,
    /// CPU threads (`-t`, and `-tb` for prompt processing).
    pub threads: usize,
    /// Anything else, appended to the command line.
    pub extra_args: Vec<String>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            parallel: 4,
            ctx: 4096,
            jinja: true,
            alias: None,
            port: None,
            api_key: None,
            threads: 2,
            extra_args: Vec::new(),
        }
    }
}

/// A running `llama-server` on 127.0.0.1; killed (and waited for) on drop.
pub struct LlamaServer {
    binary: PathBuf,
    model: PathBuf,
    opts: ServerOptions,
    port: u16,
    child: Option<Child>,
    /// Holds the log; removed on drop, unless the test is failing.
    dir: tempfile::TempDir,
    log: PathBuf,
    starts: usize,
    startup: Duration,
}

/// A port nobody listens on right now (bind 127.0.0.1:0, read it, let go).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding 127.0.0.1:0")
        .port()
}

impl LlamaServer {
    /// Starts the server on `model` and waits until `GET /health` answers 200. Panics if there
    /// is no binary (see [`binary`]), if the process exits early, or if it is not healthy within
    /// [`STARTUP_TIMEOUT`], with the tail of its log.
    pub fn start(model: &Path, opts: ServerOptions) -> LlamaServer {
        Self::start_with(binary(), model, opts)
    }

    /// [`start`](Self::start), or `None` where [`binary_or_skip`] says to skip.
    pub fn start_or_skip(model: &Path, opts: ServerOptions) -> Option<LlamaServer> {
        binary_or_skip().map(|bin| Self::start_with(bin, model, opts))
    }

    /// Starts the server from this binary.
    pub fn start_with(binary: PathBuf, model: &Path, opts: ServerOptions) -> LlamaServer {
        assert!(model.is_file(), "{} is not a file", model.display());
        let dir = tempfile::Builder::new()
            .prefix("llama-server-")
            .tempdir()
            .expect("a temporary folder for the server log");
        let log = dir.path().join("server.log");
        let port = opts.port.unwrap_or_else(free_port);
        let mut server = LlamaServer {
            binary,
            model: model.to_path_buf(),
            opts,
            port,
            child: None,
            dir,
            log,
            starts: 0,
            startup: Duration::ZERO,
        };
        server.spawn_and_wait();
        server
    }

    /// The command line (without the binary) for the current port.
    pub fn args(&self) -> Vec<String> {
        let o = &self.opts;
        let mut args: Vec<String> = vec![
            "-m".into(),
            self.model.display().to_string(),
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            self.port.to_string(),
            "-np".into(),
            o.parallel.to_string(),
            "-c".into(),
            o.ctx.to_string(),
            "-t".into(),
            o.threads.to_string(),
            "-tb".into(),
            o.threads.to_string(),
            if o.jinja { "--jinja" } else { "--no-jinja" }.into(),
            // No web page, no warm-up run: a plain, quick-starting server.
            "--no-webui".into(),
            "--no-warmup".into(),
            "--log-colors".into(),
            "off".into(),
        ];
        if let Some(alias) = &o.alias {
            args.extend(["-a".into(), alias.clone()]);
        }
        if let Some(key) = &o.api_key {
            args.extend(["--api-key".into(), key.clone()]);
        }
        args.extend(o.extra_args.iter().cloned());
        args
    }

    fn spawn_and_wait(&mut self) {
        // A port picked by free_port can be taken by someone else before the server binds it:
        // then try another (never when the test fixed the port).
        let tries = if self.opts.port.is_some() { 1 } else { 3 };
        for attempt in 1..=tries {
            match self.try_spawn() {
                Ok(startup) => {
                    self.startup = startup;
                    return;
                }
                Err(why) => {
                    let tail = self.log_tail(60);
                    let bind_failed = tail.contains("bind") || tail.contains("in use");
                    if attempt < tries && bind_failed {
                        self.port = free_port();
                        continue;
                    }
                    panic!(
                        "llama-server {why}\ncommand: {} {}\nlog {}:\n{tail}",
                        self.binary.display(),
                        self.args().join(" "),
                        self.log.display(),
                    );
                }
            }
        }
    }

    fn try_spawn(&mut self) -> Result<Duration, String> {
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("opening the server log");
        writeln!(
            log,
            "==== aligndiff test harness: start {} on port {} ====",
            self.starts, self.port
        )
        .expect("writing the server log");
        let err = log.try_clone().expect("cloning the log handle");
        let mut cmd = Command::new(&self.binary);
        cmd.args(self.args())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err));
        // llama-server reads any option from LLAMA_ARG_* variables too: keep the caller's
        // environment from changing the server under test (extra_args is the way to do that).
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("LLAMA_ARG_") {
                cmd.env_remove(name);
            }
        }
        let began = Instant::now();
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.binary.display()));
        self.child = Some(child);
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(1))
            .timeout(Duration::from_secs(5))
            .build();
        let url = format!("http://127.0.0.1:{}/health", self.port);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!("exited before it was healthy ({status})"));
            }
            if let Ok(resp) = agent.get(&url).call() {
                if resp.status() == 200 {
                    return Ok(began.elapsed());
                }
            }
            if began.elapsed() > STARTUP_TIMEOUT {
                self.kill();
                return Err(format!(
                    "was not healthy (GET /health = 200) within {STARTUP_TIMEOUT:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:PORT/v1`, the OpenAI-compatible API.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// `http://127.0.0.1:PORT`, for `/health`, `/props`, `/slots`.
    pub fn root_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, an upstream for [`super::proxy::FaultProxy`].
    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn options(&self) -> &ServerOptions {
        &self.opts
    }

    /// How long the latest start took, from spawning to the first 200 from `/health`.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills the process with SIGKILL (a crash: no clean shutdown) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again, on the same port with the same options (killing it first if it
    /// still runs), and waits until it is healthy.
    pub fn restart(&mut self) {
        self.kill();
        let fixed = self.opts.port;
        self.opts.port = Some(self.port);
        self.spawn_and_wait();
        self.opts.port = fixed;
    }

    /// The log file (stdout and stderr of every start, each after a `==== … start N ====` line).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything the server has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log_text();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The temporary folder that holds the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A ureq agent for this server: short connect timeout, generous read timeout, and the API
    /// key (if any) on every request.
    // ureq 2's Error is large by design; the middleware's signature is ureq's.
    #[allow(clippy::result_large_err)]
    pub fn agent(&self) -> ureq::Agent {
        let mut builder = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(2))
            .timeout(Duration::from_secs(120));
        if let Some(key) = self.opts.api_key.clone() {
            builder =
                builder.middleware(move |req: ureq::Request, next: ureq::MiddlewareNext<'_>| {
                    next.handle(req.set("Authorization", &format!("Bearer {key}")))
                });
        }
        builder.build()
    }

    /// `GET {base_url}{path}` as JSON; panics on any error (with the log tail).
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let url = format!("{}{path}", self.base_url());
        match self.agent().get(&url).call() {
            Ok(resp) => resp.into_json().expect("a JSON body"),
            Err(e) => panic!("GET {url}: {e}\n{}", self.log_tail(30)),
        }
    }

    /// `POST {base_url}{path}` with a JSON body, as JSON; panics on any error (with the body of
    /// an error status and the log tail).
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> serde_json::Value {
        let url = format!("{}{path}", self.base_url());
        match self.agent().post(&url).send_json(body) {
            Ok(resp) => resp.into_json().expect("a JSON body"),
            Err(ureq::Error::Status(code, resp)) => panic!(
                "POST {url}: {code} {}\n{}",
                resp.into_string().unwrap_or_default(),
                self.log_tail(30)
            ),
            Err(e) => panic!("POST {url}: {e}\n{}", self.log_tail(30)),
        }
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            // A failing test keeps the log, for a look at all of it.
            self.dir.disable_cleanup(true);
            eprintln!(
                "llama-server log (kept: {}), last lines:\n{}",
                self.log.display(),
                self.log_tail(40)
            );
        }
    }
}
