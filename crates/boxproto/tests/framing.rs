//! Property tests of the box protocol's framing: every frame and message
//! round-trips; garbage before a frame is skipped (the frame is still found);
//! random bytes never panic the decoder and never yield a frame whose CRC is
//! wrong.

use boxproto::{crc32, encode_frame, Decoder, Progress, Request, FRAME_OVERHEAD, MAX_PAYLOAD};
use proptest::prelude::*;

const CAP: usize = MAX_PAYLOAD + FRAME_OVERHEAD;

/// Feeds bytes; returns the frames (kind, seq, payload) found and the number of errors.
fn run(d: &mut Decoder<CAP>, bytes: &[u8]) -> (Vec<(u8, u8, Vec<u8>)>, usize) {
    let mut frames = Vec::new();
    let mut errors = 0;
    for &b in bytes {
        let mut p = d.push(b);
        loop {
            match p {
                Progress::Pending => break,
                Progress::Frame(h) => frames.push((h.kind, h.seq, d.payload().to_vec())),
                Progress::Error(..) => errors += 1,
            }
            p = d.poll();
        }
    }
    (frames, errors)
}

proptest! {
    #[test]
    fn frames_round_trip(kind: u8, seq: u8, payload in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut out = vec![0u8; payload.len() + FRAME_OVERHEAD];
        let n = encode_frame(kind, seq, &payload, &mut out).expect("fits");
        let mut d = Decoder::<CAP>::new();
        let (frames, errors) = run(&mut d, &out[..n]);
        prop_assert_eq!(errors, 0);
        prop_assert_eq!(frames, vec![(kind, seq, payload)]);
    }

    #[test]
    fn garbage_then_frame_resynchronises(garbage in proptest::collection::vec(any::<u8>(), 0..300),
                                         payload in proptest::collection::vec(any::<u8>(), 0..100),
                                         seq: u8) {
        let mut out = vec![0u8; payload.len() + FRAME_OVERHEAD];
        let n = encode_frame(0x03, seq, &payload, &mut out).expect("fits");
        let mut stream = garbage.clone();
        stream.extend_from_slice(&out[..n]);
        // Twice, so a frame is also found right after a good frame.
        stream.extend_from_slice(&out[..n]);
        // A false start in the garbage may declare a length that reaches past
        // the frames: they are found once that false frame is complete and
        // refused (the decoder rescans what it buffered), so the line's next
        // bytes (here zeros; on a real line the next request) release them.
        stream.extend_from_slice(&[0u8; CAP]);
        let mut d = Decoder::<CAP>::new();
        let (frames, _) = run(&mut d, &stream);
        let want = (0x03u8, seq, payload.clone());
        prop_assert_eq!(frames.iter().filter(|f| **f == want).count(), 2, "{:?}", frames);
        prop_assert_eq!(frames.last(), Some(&want));
    }

    #[test]
    fn random_bytes_never_yield_a_bad_frame(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let mut d = Decoder::<CAP>::new();
        for &b in &bytes {
            let mut p = d.push(b);
            while p != Progress::Pending {
                if let Progress::Frame(h) = p {
                    let mut re = vec![0u8; d.payload().len() + FRAME_OVERHEAD];
                    let n = encode_frame(h.kind, h.seq, d.payload(), &mut re).expect("fits");
                    // The frame, with its good CRC, really was in the input.
                    prop_assert!(bytes.windows(n).any(|w| w == &re[..n]));
                    prop_assert_eq!(crc32(&re[2..n - 4]).to_be_bytes(), [re[n - 4], re[n - 3], re[n - 2], re[n - 1]]);
                }
                p = d.poll();
            }
        }
    }

    #[test]
    fn requests_round_trip(now: u64, challenge: u32, load_id: u64,
                           keys in proptest::collection::vec(prop::sample::select(b"0123456789*#".to_vec()), 0..32),
                           secret in proptest::collection::vec(any::<u8>(), 20..=64)) {
        let reqs = [
            Request::Identify,
            Request::Status,
            Request::Keys { now, keys: &keys },
            Request::Export { now, challenge },
            Request::Wipe { load_id },
            Request::Provision(boxproto::Provision {
                load_id, box_id: now, start_day: challenge, compartments: 6, digits: 8, now, secret: &secret,
            }),
        ];
        for r in reqs {
            let mut buf = [0u8; 160];
            let n = r.encode(&mut buf).expect("fits");
            prop_assert_eq!(Request::decode(r.kind(), &buf[..n]), Ok(r));
        }
    }
}

#[test]
fn a_false_start_that_swallows_a_frame_gives_it_back() {
    let mut out = [0u8; 64];
    let n = encode_frame(0x81, 3, b"identity", &mut out).expect("fits");
    // A false header declaring 500 bytes, then the real frame, then more line.
    let mut stream = vec![0x11, 0xA5, 0x5A, 1, 0x03, 0, 0x01, 0xF4];
    stream.extend_from_slice(&out[..n]);
    let mut d = Decoder::<CAP>::new();
    let (frames, _) = run(&mut d, &stream);
    assert!(frames.is_empty(), "still inside the false frame");
    let (frames, errors) = run(&mut d, &[0u8; 600]);
    assert_eq!(errors, 1);
    assert_eq!(frames, vec![(0x81, 3, b"identity".to_vec())]);
}
