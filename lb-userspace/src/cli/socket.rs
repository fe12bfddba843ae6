//! Talking to xlbd over its control socket: one JSON request per line,
//! one JSON answer per line.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::daemon::control::{Request, Response};

use super::Context;

/// How long xlbd may take to answer (a reload rebuilds tables).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// Sends `request` and returns xlbd's answer, failing when it refused.
///
/// # Errors
///
/// When the socket cannot be reached, or xlbd answers `ok: false`.
pub fn send(context: &Context, request: &Request) -> anyhow::Result<Response> {
    let path = &context.socket;
    let mut stream = UnixStream::connect(path)
        .with_context(|| format!("connecting to xlbd at {} (is it running?)", path.display()))?;
    stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .with_context(|| format!("writing to {}", path.display()))?;
    let mut answer = String::new();
    BufReader::new(&stream)
        .read_line(&mut answer)
        .with_context(|| format!("reading xlbd's answer on {}", path.display()))?;
    let response: Response = serde_json::from_str(&answer)
        .with_context(|| format!("xlbd's answer is not a response: {answer:?}"))?;
    if !response.ok {
        bail!("xlbd refused: {}", response.message);
    }
    Ok(response)
}

/// Sends a request without arguments and prints the answer.
///
/// # Errors
///
/// See [`send`].
pub fn simple(context: &Context, request: Request) -> anyhow::Result<()> {
    let response = send(context, &request)?;
    match context.format {
        super::Format::Json => super::output::json(&response),
        super::Format::Table => {
            println!("{} ({} changes)", response.message, response.changes);
            Ok(())
        }
    }
}
