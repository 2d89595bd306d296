//! The box station: the line to the lock box plugged into the centre's cable, and the talk a
//! load and a return have with it over the box protocol (`docs/box-protocol.md`).
//!
//! The secret crosses only this line, once, in the `Provision` request; nothing here logs,
//! stores or returns it. The station's conversations are blocking serial I/O and run on
//! tokio's blocking pool, one request at a time, each bounded by the line's read timeout.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use anxin_domain::{Code, Problem};
use boxproto::station::{Station, StationError};
use boxproto::{BoxState, BoxStatus, Identity, Provision};

use crate::{Error, Result};

/// How long the station waits for the box to answer one request (a provision derives six
/// codes and writes flash; an export of a full log takes a quarter of a second at 115200).
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// Where the box station's cable is (`boxes.station` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// `tcp:HOST:PORT`: a serial line bridged to TCP (QEMU's UART, `anxin-box-sim serve`, or a
    /// serial bridge on the same host; the secret crosses it, so keep it on loopback or a
    /// tunnel).
    Tcp(String),
    /// A serial device (`/dev/ttyUSB0`), set to 115200 8N1 raw with `stty` when opened.
    Serial(PathBuf),
    /// `sim:DIR`: the simulated bench of the demo and the tests, one simulated box per
    /// registered box in `DIR/<serial>/box.json` (`anxin-box-sim` files), plugged in on demand.
    Bench(PathBuf),
}

impl Line {
    /// Reads a `boxes.station` value; the error says what was expected.
    pub fn parse(s: &str) -> std::result::Result<Line, String> {
        let s = s.trim();
        if let Some(addr) = s.strip_prefix("tcp:") {
            if addr
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
            {
                return Ok(Line::Tcp(addr.to_owned()));
            }
            return Err(format!("`{s}`: expected tcp:HOST:PORT"));
        }
        if let Some(dir) = s.strip_prefix("sim:") {
            if dir.is_empty() {
                return Err("`sim:` needs a directory: sim:DIR".into());
            }
            return Ok(Line::Bench(PathBuf::from(dir)));
        }
        if s.starts_with('/') {
            return Ok(Line::Serial(PathBuf::from(s)));
        }
        Err(format!(
            "`{s}`: expected tcp:HOST:PORT, a serial device path such as /dev/ttyUSB0, or sim:DIR"
        ))
    }

    /// Opens the line to the box `box_id`, registered as `label` (only the bench uses them: it
    /// plugs that box in).
    fn open(&self, box_id: u64, label: &str) -> io::Result<Box<dyn Wire>> {
        match self {
            Line::Tcp(addr) => {
                let to = addr
                    .to_socket_addrs()?
                    .next()
                    .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
                let s = TcpStream::connect_timeout(&to, ANSWER_WITHIN)?;
                s.set_read_timeout(Some(ANSWER_WITHIN))?;
                s.set_write_timeout(Some(ANSWER_WITHIN))?;
                s.set_nodelay(true)?;
                Ok(Box::new(s))
            }
            Line::Serial(dev) => {
                // Raw 115200 8N1; a read returns after 5 s without a byte (VMIN 0, VTIME 50).
                let ok = std::process::Command::new("stty")
                    .arg("-F")
                    .arg(dev)
                    .args(["115200", "raw", "-echo", "cs8", "-cstopb", "-parenb"])
                    .args(["min", "0", "time", "50"])
                    .status()?
                    .success();
                if !ok {
                    return Err(io::Error::other(format!(
                        "stty could not set up {}",
                        dev.display()
                    )));
                }
                let f = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(dev)?;
                Ok(Box::new(f))
            }
            Line::Bench(dir) => {
                let s = anxin_boxsim::serve::plug(dir, box_id, label)?;
                s.set_read_timeout(Some(ANSWER_WITHIN))?;
                Ok(Box::new(s))
            }
        }
    }
}

/// A byte line to a box.
trait Wire: Read + Write + Send {}
impl<T: Read + Write + Send> Wire for T {}

/// A box on the station, identified, with its session open.
pub(crate) struct Plugged {
    station: Option<Station<Box<dyn Wire>>>,
    /// What the box said it is.
    pub identity: Identity,
}

/// The box's name as printed on it.
pub fn box_label(serial: u64) -> String {
    format!("BOX-{serial:04}")
}

/// Seconds since 1970 for the box's clock.
pub(crate) fn box_time(t: chrono::DateTime<chrono::Utc>) -> u64 {
    u64::try_from(t.timestamp()).unwrap_or(0)
}

fn refusal(e: StationError) -> Error {
    match e {
        StationError::Io(e) => Problem::new(Code::StationUnreachable)
            .arg("why", e.to_string())
            .into(),
        StationError::Refused(code) => Problem::new(Code::StationRefused)
            .arg("why", format!("{code:?}"))
            .into(),
        other => Problem::new(Code::StationRefused)
            .arg("why", other.to_string())
            .into(),
    }
}

impl Plugged {
    /// Opens the station's line and identifies the box on it (the box the load names, on the
    /// bench). No station configured, or no box answering: refused by code.
    pub(crate) async fn open(line: Option<&Line>, box_id: u64, label: &str) -> Result<Plugged> {
        let Some(line) = line.cloned() else {
            return Err(Problem::new(Code::StationNone).into());
        };
        let label = label.to_owned();
        let (station, identity) = tokio::task::spawn_blocking(move || {
            let wire = line.open(box_id, &label).map_err(StationError::Io)?;
            let mut st = Station::new(wire);
            let id = st.identify()?;
            Ok::<_, StationError>((st, id))
        })
        .await
        .map_err(|e| Error::Internal(format!("box station: {e}")))?
        .map_err(refusal)?;
        Ok(Plugged {
            station: Some(station),
            identity,
        })
    }

    /// Runs one exchange with the box on the blocking pool.
    async fn run<R: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Station<Box<dyn Wire>>) -> std::result::Result<R, StationError>
            + Send
            + 'static,
    ) -> Result<R> {
        let mut st = self
            .station
            .take()
            .ok_or_else(|| Error::Internal("the box station's line was lost".into()))?;
        let (st, r) = tokio::task::spawn_blocking(move || {
            let r = f(&mut st);
            (st, r)
        })
        .await
        .map_err(|e| Error::Internal(format!("box station: {e}")))?;
        self.station = Some(st);
        r.map_err(refusal)
    }

    /// Writes a load into the box (the secret crosses the cable here, once) and returns the
    /// status the box answered with.
    pub(crate) async fn provision(&mut self, p: ProvisionData) -> Result<BoxStatus> {
        self.run(move |st| {
            st.provision(&Provision {
                load_id: p.load_id,
                box_id: p.box_id,
                start_day: p.start_day,
                compartments: p.compartments,
                digits: p.digits,
                now: p.now,
                secret: &p.secret,
            })
        })
        .await
    }

    /// The box's log, exported with `challenge` (checked to be echoed).
    pub(crate) async fn export(&mut self, now: u64, challenge: u32) -> Result<Vec<u8>> {
        self.run(move |st| st.export(now, challenge)).await
    }

    /// Empties the box of `load_id`, whose log was exported.
    pub(crate) async fn wipe(&mut self, load_id: u64) -> Result<()> {
        self.run(move |st| st.wipe(load_id)).await
    }

    /// Takes a load back out of the box (export, then wipe): for a load the server did not
    /// keep (its unit of work failed after the box was written) or one already returned here.
    pub(crate) async fn empty(&mut self, load_id: u64, now: u64) -> Result<()> {
        self.export(now, 0).await?;
        self.wipe(load_id).await
    }

    /// The box is empty, by its own account.
    pub(crate) fn is_empty(&self) -> bool {
        self.identity.state == BoxState::Empty
    }
}

/// What a provision writes (owned, so it can move to the blocking pool).
pub(crate) struct ProvisionData {
    pub load_id: u64,
    pub box_id: u64,
    pub start_day: u32,
    pub compartments: u8,
    pub digits: u8,
    pub now: u64,
    pub secret: [u8; 32],
}

impl Drop for ProvisionData {
    fn drop(&mut self) {
        // Leave no copy of the secret behind in this buffer.
        self.secret = [0; 32];
        std::hint::black_box(&self.secret);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn station_lines_are_read_and_bad_ones_explained() {
        assert_eq!(
            Line::parse("tcp:127.0.0.1:7001"),
            Ok(Line::Tcp("127.0.0.1:7001".into()))
        );
        assert_eq!(
            Line::parse("/dev/ttyUSB0"),
            Ok(Line::Serial("/dev/ttyUSB0".into()))
        );
        assert_eq!(Line::parse("sim:/tmp/b"), Ok(Line::Bench("/tmp/b".into())));
        for bad in ["tcp:nohost", "tcp::80", "tcp:h:port", "sim:", "COM3", ""] {
            let e = Line::parse(bad).expect_err(bad);
            assert!(e.contains("expected") || e.contains("needs"), "{bad}: {e}");
        }
    }
}
