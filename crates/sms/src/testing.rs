//! A real Kannel for tests: bearerbox, smsbox and Kannel's fake SMS centre (`fakesmsc`) started
//! on free ports in a temporary directory, with a configuration of the shape of
//! `shared/data/kannel-fake.conf`. What fakesmsc received is read from its standard output.
//! Everything started is killed when the [`Kannel`] is dropped.
//!
//! If the Kannel binaries are missing, the tests fail and say to run `.ci/kannel.sh`.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BEARERBOX: &str = "/usr/sbin/bearerbox";
const SMSBOX: &str = "/usr/sbin/smsbox";
const FAKESMSC: &str = "/usr/lib/kannel/test/fakesmsc";

/// The sendsms user and password of the test gateway.
pub const USERNAME: &str = "anxin";
pub const PASSWORD: &str = "kannel-test-pw";
/// The sender number.
pub const FROM: &str = "10690";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16, what: &str, log: &Path) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if start.elapsed() > Duration::from_secs(20) {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            panic!("{what} did not open port {port} within 20 s; its log:\n{tail}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running Kannel with a fake SMS centre.
pub struct Kannel {
    dir: tempfile::TempDir,
    conf: PathBuf,
    pub sendsms_port: u16,
    smsbox_port: u16,
    bearerbox: Option<Child>,
    smsbox: Option<Child>,
    fakesmsc: Option<Child>,
}

impl Kannel {
    /// Starts bearerbox, smsbox and fakesmsc. Panics (never skips) if Kannel is not installed.
    pub fn start() -> Kannel {
        for bin in [BEARERBOX, SMSBOX, FAKESMSC] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: Kannel is not installed. Run `bash .ci/kannel.sh` \
                 (apt-get install kannel kannel-extras) and test again"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let (admin, smsbox_port, smsc, sendsms) =
            (free_port(), free_port(), free_port(), free_port());
        let d = dir.path().display();
        let conf = dir.path().join("kannel.conf");
        std::fs::write(
            &conf,
            format!(
                "group = core\nadmin-port = {admin}\nsmsbox-port = {smsbox_port}\n\
                 admin-password = test-admin\nlog-file = \"{d}/bearerbox.log\"\nlog-level = 0\n\
                 box-allow-ip = \"127.0.0.1\"\ndlr-storage = internal\n\
                 store-type = file\nstore-location = \"{d}/store\"\n\n\
                 group = smsc\nsmsc = fake\nsmsc-id = fake\nport = {smsc}\n\
                 connect-allow-ip = 127.0.0.1\n\n\
                 group = smsbox\nbearerbox-host = 127.0.0.1\nsendsms-port = {sendsms}\n\
                 log-file = \"{d}/smsbox.log\"\nlog-level = 0\n\
                 http-request-retry = 30\nhttp-queue-delay = 1\n\n\
                 group = sendsms-user\nusername = {USERNAME}\npassword = {PASSWORD}\n\
                 max-messages = 10\nconcatenation = true\n\n\
                 group = sms-service\nkeyword = default\ntext = \"ok\"\n"
            ),
        )
        .unwrap();
        let mut k = Kannel {
            dir,
            conf,
            sendsms_port: sendsms,
            smsbox_port,
            bearerbox: None,
            smsbox: None,
            fakesmsc: None,
        };
        k.bearerbox = Some(k.spawn(BEARERBOX, &[], "bearerbox.out"));
        wait_port(admin, "bearerbox", &k.dir.path().join("bearerbox.out"));
        wait_port(
            smsbox_port,
            "bearerbox",
            &k.dir.path().join("bearerbox.out"),
        );
        k.fakesmsc = Some(k.spawn(
            FAKESMSC,
            &[
                "-H",
                "127.0.0.1",
                "-r",
                &smsc.to_string(),
                "-m",
                "0",
                "100 200 text hi",
            ],
            "fakesmsc.out",
        ));
        k.start_smsbox();
        k
    }

    fn spawn(&self, bin: &str, args: &[&str], out: &str) -> Child {
        let out = std::fs::File::create(self.dir.path().join(out)).unwrap();
        let mut c = Command::new(bin);
        c.args(args);
        if bin != FAKESMSC {
            c.arg(&self.conf);
        }
        c.stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"))
    }

    /// Starts smsbox (the HTTP side) and waits until sendsms answers.
    pub fn start_smsbox(&mut self) {
        self.smsbox = Some(self.spawn(SMSBOX, &[], "smsbox.out"));
        wait_port(
            self.sendsms_port,
            "smsbox",
            &self.dir.path().join("smsbox.log"),
        );
        let _ = self.smsbox_port;
    }

    /// Kills smsbox: the gateway is down for Anxin (connections refused).
    pub fn stop_smsbox(&mut self) {
        if let Some(mut c) = self.smsbox.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.sendsms_port)).is_ok()
            && start.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The sendsms URL.
    pub fn sendsms_url(&self) -> String {
        format!("http://127.0.0.1:{}/cgi-bin/sendsms", self.sendsms_port)
    }

    /// Every message fakesmsc received, as `(from, to, text)`, in arrival order.
    pub fn received(&self) -> Vec<(String, String, String)> {
        let out = std::fs::read_to_string(self.dir.path().join("fakesmsc.out")).unwrap_or_default();
        out.lines()
            .filter_map(|l| {
                let rest = l.split_once("Got message ")?.1;
                let body = rest.split_once(": <")?.1.strip_suffix('>')?;
                let mut parts = body.splitn(4, ' ');
                let from = parts.next()?.to_owned();
                let to = parts.next()?.to_owned();
                let _kind = parts.next()?;
                let text = parts.next().unwrap_or("").to_owned();
                Some((from, to, text))
            })
            .collect()
    }

    /// Waits until fakesmsc received at least `n` messages (or `timeout` passes).
    pub fn wait_received(&self, n: usize, timeout: Duration) -> Vec<(String, String, String)> {
        let start = Instant::now();
        loop {
            let got = self.received();
            if got.len() >= n || start.elapsed() > timeout {
                return got;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The logs, for failure messages.
    pub fn logs(&self) -> String {
        ["bearerbox.log", "smsbox.log", "fakesmsc.out"]
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                format!(
                    "--- {f}\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Kannel {
    fn drop(&mut self) {
        for c in [
            self.smsbox.take(),
            self.fakesmsc.take(),
            self.bearerbox.take(),
        ]
        .into_iter()
        .flatten()
        {
            let mut c = c;
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
