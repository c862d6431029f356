//! The thread that talks to the agent. The writer hands it one request at a
//! time and, while the agent reads and decodes a payload (tens of
//! milliseconds for a full one; seconds for a slow agent), keeps taking
//! chunks from its queue and encoding them, within its byte budget. Sending
//! on the writer's own thread stalled the queue for that long, and spans
//! were dropped at the queue with room left in the buffer.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use crate::export::transport::{Response, SendError, Transport};

/// One request to the agent: a PUT of traces, or a GET of `/info`.
pub(crate) struct Request {
    method: Method,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    limit: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Put,
}

/// The agent's answer, and the body, handed back for a retry or a split.
pub(crate) struct Answer {
    pub(crate) result: Result<Response, SendError>,
    pub(crate) body: Vec<u8>,
}

/// Where requests go: the sender thread, or this thread when none could be
/// started.
pub(crate) enum Link {
    Thread {
        requests: mpsc::Sender<Request>,
        answers: Receiver<Answer>,
    },
    Inline(Arc<Transport>),
}

/// What [`Link::start`] left to do.
pub(crate) enum Exchange {
    /// Under way on the sender thread: ask [`Link::answer`].
    Pending,
    /// Done here already.
    Done(Answer),
}

impl Link {
    /// Starts the sender thread with `transport`; without a thread, requests
    /// are made inline.
    pub(crate) fn new(transport: Transport) -> Link {
        let (requests, incoming) = mpsc::channel::<Request>();
        let (outgoing, answers) = mpsc::channel::<Answer>();
        let shared = Arc::new(transport);
        let for_thread = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("ddspan-sender".to_owned())
            .spawn(move || {
                // Ends when the writer drops its end.
                for request in incoming {
                    let answer = exchange(&for_thread, request);
                    if outgoing.send(answer).is_err() {
                        return;
                    }
                }
            });
        match spawned {
            Ok(_) => Link::Thread { requests, answers },
            Err(error) => {
                crate::util::diagnostics::warn(format_args!(
                    "could not start the sender thread ({error}); the writer sends itself"
                ));
                Link::Inline(shared)
            }
        }
    }

    /// Starts one request; `limit` bounds it when shorter than the
    /// configured request timeout.
    pub(crate) fn start(
        &mut self,
        method: Method,
        path: &'static str,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
        limit: Option<Duration>,
    ) -> Exchange {
        let request = Request {
            method,
            path,
            headers,
            body,
            limit,
        };
        match self {
            Link::Thread { requests, .. } => match requests.send(request) {
                Ok(()) => Exchange::Pending,
                // Not reached: the thread outlives the writer's end of the
                // channel (`exchange` turns panics into failed sends).
                Err(mpsc::SendError(request)) => Exchange::Done(Answer {
                    result: Err(SendError::failed("the sender thread ended")),
                    body: request.body,
                }),
            },
            Link::Inline(transport) => Exchange::Done(exchange(transport, request)),
        }
    }

    /// The answer to the request under way, if it came within `wait`.
    pub(crate) fn answer(&mut self, wait: Duration) -> Option<Answer> {
        match self {
            Link::Thread { answers, .. } => match answers.recv_timeout(wait) {
                Ok(answer) => Some(answer),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => Some(Answer {
                    result: Err(SendError::failed("the sender thread ended")),
                    body: Vec::new(),
                }),
            },
            Link::Inline(_) => None,
        }
    }
}

/// One request, with its body handed back; a panic inside the transport
/// becomes a failed send, never the end of the thread.
fn exchange(transport: &Transport, request: Request) -> Answer {
    let Request {
        method,
        path,
        headers,
        body,
        limit,
    } = request;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match method {
        Method::Put => transport.put(path, &headers, &body, limit),
        Method::Get => transport.get(path, &headers, limit),
    }))
    .unwrap_or_else(|_| Err(SendError::failed("the HTTP client panicked")));
    Answer { result, body }
}
