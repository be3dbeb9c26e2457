//! csm-load: sends realistic AWS Client-Side Monitoring datagrams to a receiver on loopback.
//!
//! The datagrams have the shape aws-sdk v2 sends (an `ApiCallAttempt`, then the `ApiCall` it belongs
//! to), about 400 to 650 bytes, with timestamps that grow with the message number. A run always ends by
//! itself: after `--count` datagrams or `--max-secs` seconds, whichever comes first. It prints one line:
//! `sent=N errors=E secs=T rate=R bytes_min=A bytes_max=B max_burst=M`.

use std::io::Write;
use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

use clap::Parser;

/// Distinct datagrams generated up front; the run cycles through them.
const POOL_SIZE: usize = 4096;
const FIRST_TIMESTAMP_MS: u64 = 1_700_000_000_000;

#[derive(Parser)]
#[command(about = "Sends realistic CSM datagrams to 127.0.0.1:PORT, bounded in count and time")]
struct Args {
    /// UDP port on 127.0.0.1 to send to.
    #[arg(long, default_value_t = 31000)]
    port: u16,
    /// Datagrams to send.
    #[arg(long, default_value_t = 200_000)]
    count: u64,
    /// Datagrams per second; 0 sends as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Pacing tick in microseconds: each tick sends what is due as one small burst.
    #[arg(long, default_value_t = 200)]
    tick_us: u64,
    /// Pad each datagram (inside a string field, so it stays valid JSON) to this many bytes.
    #[arg(long, default_value_t = 0)]
    pad_to: usize,
    /// Stop after this many seconds (0.1 to 600) even if not all were sent.
    #[arg(long, default_value_t = 60.0)]
    max_secs: f64,
    /// Print the first K datagrams of the pool, one per line, and send nothing.
    #[arg(long, default_value_t = 0)]
    dump: usize,
    /// Seed of the generator, so runs are reproducible.
    #[arg(long, default_value_t = 0x5EED)]
    seed: u64,
}

struct Service {
    name: &'static str,
    endpoint: &'static str,
    apis: &'static [&'static str],
}

const SERVICES: &[Service] = &[
    Service {
        name: "DynamoDB",
        endpoint: "dynamodb",
        apis: &[
            "GetItem",
            "PutItem",
            "Query",
            "UpdateItem",
            "BatchWriteItem",
        ],
    },
    Service {
        name: "S3",
        endpoint: "s3",
        apis: &[
            "GetObject",
            "PutObject",
            "ListObjectsV2",
            "HeadObject",
            "DeleteObject",
        ],
    },
    Service {
        name: "SQS",
        endpoint: "sqs",
        apis: &["SendMessage", "ReceiveMessage", "DeleteMessage"],
    },
    Service {
        name: "Lambda",
        endpoint: "lambda",
        apis: &["Invoke", "GetFunction"],
    },
    Service {
        name: "SNS",
        endpoint: "sns",
        apis: &["Publish"],
    },
    Service {
        name: "KMS",
        endpoint: "kms",
        apis: &["Decrypt", "GenerateDataKey"],
    },
    Service {
        name: "SecretsManager",
        endpoint: "secretsmanager",
        apis: &["GetSecretValue"],
    },
    Service {
        name: "STS",
        endpoint: "sts",
        apis: &["AssumeRole", "GetCallerIdentity"],
    },
];
const USER_AGENT_EXTRAS: &[&str] = &["", "", " cfg/retry-mode#standard", " md/arch#x64"];
const REGIONS: &[&str] = &[
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-2",
];

fn token(rng: &mut fastrand::Rng, alphabet: &[u8], len: usize) -> String {
    (0..len)
        .map(|_| alphabet[rng.usize(..alphabet.len())] as char)
        .collect()
}

fn user_agent(rng: &mut fastrand::Rng, service: &Service) -> String {
    format!(
        "aws-sdk-nodejs/2.{}.0 linux/v22.11.0 exec-env/AWS_Lambda_nodejs22.x callback promise api/{}#2.{}.0 md/nodejs#22.11.0{}",
        1600 + rng.u32(..100),
        service.endpoint,
        1600 + rng.u32(..100),
        USER_AGENT_EXTRAS[rng.usize(..USER_AGENT_EXTRAS.len())],
    )
}

/// What an attempt and the call it finishes have in common.
struct Call {
    service: &'static Service,
    api: &'static str,
    region: &'static str,
    client_id: String,
    user_agent: String,
}

impl Call {
    fn random(rng: &mut fastrand::Rng) -> Self {
        let service = &SERVICES[rng.usize(..SERVICES.len())];
        Call {
            service,
            api: service.apis[rng.usize(..service.apis.len())],
            region: REGIONS[rng.usize(..REGIONS.len())],
            client_id: if rng.u8(..4) == 0 {
                format!("fn-{}", token(rng, HEX, 8))
            } else {
                String::new()
            },
            user_agent: user_agent(rng, service),
        }
    }
}

const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const HEX: &[u8] = b"0123456789abcdef";

fn attempt(call: &Call, n: u64, rng: &mut fastrand::Rng) -> String {
    let throttled = rng.u8(..20) == 0;
    let exception = if throttled {
        r#","AwsException":"ThrottlingException","AwsExceptionMessage":"Rate exceeded""#
    } else {
        ""
    };
    format!(
        r#"{{"Version":1,"ClientId":"{}","Type":"ApiCallAttempt","Service":"{}","Api":"{}","Timestamp":{},"AttemptLatency":{},"Fqdn":"{}.{}.amazonaws.com","UserAgent":"{}","AccessKey":"ASIA{}","Region":"{}","HttpStatusCode":{},"XAmzRequestId":"{}","XAmzId2":"{}"{exception}}}"#,
        call.client_id,
        call.service.name,
        call.api,
        timestamp(n, rng),
        3 + rng.u32(..400),
        call.service.endpoint,
        call.region,
        call.user_agent,
        token(rng, UPPER, 16),
        call.region,
        if throttled { 400 } else { 200 },
        token(rng, UPPER, 32),
        token(rng, HEX, 40),
    )
}

fn api_call(call: &Call, n: u64, rng: &mut fastrand::Rng) -> String {
    let retries = if rng.u8(..10) == 0 {
        1 + rng.u32(..3)
    } else {
        0
    };
    let gave_up = retries == 3;
    let exception = if gave_up {
        r#","FinalAwsException":"ProvisionedThroughputExceededException","FinalAwsExceptionMessage":"The level of configured provisioned throughput for the table was exceeded.""#
    } else {
        ""
    };
    format!(
        r#"{{"Version":1,"ClientId":"{}","Type":"ApiCall","Service":"{}","Api":"{}","Timestamp":{},"AttemptCount":{},"Region":"{}","UserAgent":"{}","Latency":{},"FinalHttpStatusCode":{},"MaxRetriesExceeded":{},"XAmzRequestId":"{}"{exception}}}"#,
        call.client_id,
        call.service.name,
        call.api,
        timestamp(n, rng),
        1 + retries,
        call.region,
        call.user_agent,
        4 + rng.u32(..900),
        if gave_up { 400 } else { 200 },
        u8::from(gave_up),
        token(rng, UPPER, 32),
    )
}

/// Grows with the message number, so a receiver's order can be checked.
fn timestamp(n: u64, rng: &mut fastrand::Rng) -> u64 {
    FIRST_TIMESTAMP_MS + n * 5 + rng.u64(..5)
}

/// Pads inside a string field, so the datagram stays valid JSON.
fn pad(mut text: String, pad_to: usize) -> Vec<u8> {
    const PAD_FIELD: &str = r#","Pad":"""#;
    if pad_to > text.len() + PAD_FIELD.len() {
        let pad = pad_to - text.len() - PAD_FIELD.len();
        text.pop(); // the closing brace
        text.push_str(r#","Pad":""#);
        text.extend(std::iter::repeat_n('x', pad));
        text.push_str(r#""}"#);
    }
    text.into_bytes()
}

/// The pool: each call as its attempt, then the `ApiCall` that finishes it.
fn pool(rng: &mut fastrand::Rng, pad_to: usize) -> Vec<Vec<u8>> {
    (0..POOL_SIZE as u64 / 2)
        .flat_map(|pair| {
            let call = Call::random(rng);
            let first = attempt(&call, pair * 2, rng);
            let second = api_call(&call, pair * 2 + 1, rng);
            [pad(first, pad_to), pad(second, pad_to)]
        })
        .collect()
}

struct Outcome {
    sent: u64,
    errors: u64,
    max_burst: u64,
}

fn send_all(socket: &UdpSocket, pool: &[Vec<u8>], args: &Args) -> Outcome {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.max_secs.clamp(0.1, 600.0));
    let mut outcome = Outcome {
        sent: 0,
        errors: 0,
        max_burst: 0,
    };
    let send = |outcome: &mut Outcome| {
        // With nothing listening the kernel answers ECONNREFUSED; the datagram still counts as sent.
        if socket
            .send(&pool[outcome.sent as usize % pool.len()])
            .is_err()
        {
            outcome.errors += 1;
        }
        outcome.sent += 1;
    };
    if args.rate <= 0.0 {
        while outcome.sent < args.count {
            send(&mut outcome);
            if outcome.sent.is_multiple_of(4096) && Instant::now() >= deadline {
                break;
            }
        }
        return outcome;
    }
    let tick = Duration::from_micros(args.tick_us.max(10));
    let mut next_tick = start;
    while outcome.sent < args.count && Instant::now() < deadline {
        // Send the shortfall against the target rate as one burst.
        let due = (((start.elapsed().as_secs_f64() * args.rate) as u64) + 1).min(args.count);
        let burst = due.saturating_sub(outcome.sent);
        for _ in 0..burst {
            send(&mut outcome);
        }
        outcome.max_burst = outcome.max_burst.max(burst);
        next_tick += tick;
        match next_tick.checked_duration_since(Instant::now()) {
            Some(wait) => std::thread::sleep(wait),
            None => next_tick = Instant::now(),
        }
    }
    outcome
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let mut rng = fastrand::Rng::with_seed(args.seed);
    let pool = pool(&mut rng, args.pad_to);
    if args.dump > 0 {
        let mut out = std::io::stdout().lock();
        for message in pool.iter().take(args.dump) {
            out.write_all(message)?;
            out.write_all(b"\n")?;
        }
        return Ok(());
    }
    // Loopback only, by construction: the address is not an argument.
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    socket.connect((Ipv4Addr::LOCALHOST, args.port))?;
    let start = Instant::now();
    let outcome = send_all(&socket, &pool, &args);
    let secs = start.elapsed().as_secs_f64();
    let sizes = pool.iter().map(Vec::len);
    println!(
        "sent={} errors={} secs={secs:.3} rate={:.0} bytes_min={} bytes_max={} max_burst={}",
        outcome.sent,
        outcome.errors,
        outcome.sent as f64 / secs,
        sizes.clone().min().unwrap_or(0),
        sizes.max().unwrap_or(0),
        outcome.max_burst,
    );
    Ok(())
}
