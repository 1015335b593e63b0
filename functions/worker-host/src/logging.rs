//! The Worker's `tracing` subscriber: one JSON object per event, written with `console.info` (`console.warn` and
//! `console.error` for warnings and errors), so that Workers Logs records each line at its level, and which
//! `wrangler dev` and `wrangler tail` show too.
//!
//! Each line holds the event's level, target, message and fields, the fields of every span it happened in
//! (outermost first, so `request_id` and `function` from the request-context span are on every line of a
//! request), the innermost span's name and the time from JavaScript's `Date` (`SystemTime::now()` panics on
//! wasm32). It is installed once per isolate and keeps only open spans, so it does not grow with traffic.
//! It writes what callers log and nothing else: no code may log a secret, and this module adds none.
//! Nothing here may panic: a lock is never held while foreign code (a field's `Debug`) runs.
//!
//! Lines of level INFO and below wait in the isolate until the event that wrote them is answered ([`flush`]):
//! the fetch handler writes them in `waitUntil`, after the response has gone, and the queue and cron handlers
//! before they return. Each console write is a message out of the isolate (under `wrangler dev`, a line to
//! wrangler's process, and a DevTools message too while its inspector is attached), and no client should wait for
//! its request's log lines. WARN and ERROR lines are written at once, after whatever was waiting, so lines keep
//! their order and the line that explains a failure is out before anything else can go wrong. At most [`MAX_PENDING`] lines wait; more are written at once.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, Once, PoisonError};

use serde::ser::{Serialize, SerializeMap as _, Serializer};
use serde_json::Value;
use shared::telemetry::{Fields, JsonFields};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use worker::wasm_bindgen::JsValue;

/// The most verbose level written.
const MAX_LEVEL: Level = Level::INFO;

/// Installs the subscriber as the global default, once per isolate.
pub(crate) fn init() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if tracing::subscriber::set_global_default(JsonConsole::default()).is_err() {
            worker::web_sys::console::error_1(&JsValue::from_str("logging: a tracing subscriber was already installed"));
        }
    });
}

struct SpanData {
    metadata: &'static Metadata<'static>,
    parent: Option<u64>,
    fields: Fields,
    /// Handles to this span, plus one for each open child (a child's line needs its ancestors' fields).
    refs: usize,
}

#[derive(Default)]
struct State {
    spans: HashMap<u64, SpanData>,
    /// The entered spans, innermost last. Workers run one thread per isolate, so one stack serves it; a future
    /// instrumented with a span enters it for each poll and leaves it before yielding.
    stack: Vec<u64>,
}

/// The subscriber. Span ids start at 1 (`Id` may not be 0).
#[derive(Default)]
struct JsonConsole {
    last_id: AtomicU64,
    state: Mutex<State>,
}

impl JsonConsole {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The most lines that wait for [`flush`]; a request that logs more has the rest written at once.
const MAX_PENDING: usize = 256;

thread_local! {
    /// The INFO and lower lines not written yet. An isolate runs one thread.
    static PENDING: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn write(level: Level, line: String) {
    // `Level` orders by verbosity: every level above WARN is INFO, DEBUG or TRACE.
    if level > Level::WARN {
        let full = PENDING.with(|pending| {
            let mut pending = pending.borrow_mut();
            pending.push(line);
            pending.len() >= MAX_PENDING
        });
        if full {
            flush();
        }
        return;
    }
    flush();
    let line = JsValue::from_str(&line);
    if level == Level::ERROR {
        worker::web_sys::console::error_1(&line);
    } else {
        worker::web_sys::console::warn_1(&line);
    }
}

/// Writes the lines that wait, oldest first.
pub(crate) fn flush() {
    let lines = PENDING.with(|pending| std::mem::take(&mut *pending.borrow_mut()));
    for line in lines {
        worker::web_sys::console::info_1(&JsValue::from_str(&line));
    }
}

impl Subscriber for JsonConsole {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.enabled(metadata) { Interest::always() } else { Interest::never() }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= MAX_LEVEL
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::from_level(MAX_LEVEL))
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut fields = Fields::default();
        attrs.record(&mut JsonFields(&mut fields));
        let id = self.last_id.fetch_add(1, Ordering::Relaxed).wrapping_add(1).max(1);
        let mut state = self.state();
        let parent = if attrs.is_contextual() {
            state.stack.last().copied()
        } else {
            attrs.parent().map(Id::into_u64)
        };
        let parent = parent.filter(|parent| match state.spans.get_mut(parent) {
            Some(data) => {
                data.refs += 1;
                true
            }
            None => false,
        });
        state.spans.insert(id, SpanData { metadata: attrs.metadata(), parent, fields, refs: 1 });
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut fields = Fields::default();
        values.record(&mut JsonFields(&mut fields));
        if let Some(data) = self.state().spans.get_mut(&span.into_u64()) {
            data.fields.absorb(fields);
        }
    }

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let metadata = event.metadata();
        // The event's fields are recorded before the lock is taken: a field's `Debug` is foreign code.
        let mut event_fields = Fields::default();
        event.record(&mut JsonFields(&mut event_fields));
        let time = String::from(worker::js_sys::Date::new_0().to_iso_string());
        let text = {
            let state = self.state();
            let innermost = if event.is_contextual() {
                state.stack.last().copied()
            } else {
                event.parent().map(Id::into_u64)
            };
            let mut chain = Vec::new();
            let mut next = innermost;
            while let Some(id) = next {
                let Some(data) = state.spans.get(&id) else { break };
                chain.push(data);
                next = data.parent;
            }
            let mut line = Line::default();
            if let Some(data) = chain.first() {
                line.put("span", Member::Text(data.metadata.name()));
            }
            for data in chain.iter().rev() {
                line.put_all(&data.fields);
            }
            line.put_all(&event_fields);
            line.put("level", Member::Text(metadata.level().as_str()));
            line.put("target", Member::Text(metadata.target()));
            line.put("time", Member::Text(&time));
            // Serialising strings, numbers and booleans cannot fail; if it ever did, say so rather than panic.
            serde_json::to_string(&line).unwrap_or_else(|_| "{\"level\":\"ERROR\",\"message\":\"unserialisable log event\"}".to_owned())
        };
        write(*metadata.level(), text);
    }

    fn enter(&self, span: &Id) {
        self.state().stack.push(span.into_u64());
    }

    fn exit(&self, span: &Id) {
        let id = span.into_u64();
        let mut state = self.state();
        if let Some(position) = state.stack.iter().rposition(|entered| *entered == id) {
            state.stack.remove(position);
        }
    }

    fn clone_span(&self, span: &Id) -> Id {
        if let Some(data) = self.state().spans.get_mut(&span.into_u64()) {
            data.refs += 1;
        }
        span.clone()
    }

    fn try_close(&self, span: Id) -> bool {
        let mut state = self.state();
        let mut closed = false;
        let mut next = Some(span.into_u64());
        // Closing a span releases its hold on its parent, which may close in turn.
        while let Some(id) = next.take() {
            let Some(data) = state.spans.get_mut(&id) else { break };
            data.refs = data.refs.saturating_sub(1);
            if data.refs > 0 {
                break;
            }
            let parent = data.parent;
            state.spans.remove(&id);
            closed = closed || id == span.into_u64();
            next = parent;
        }
        closed
    }
}

/// One log line's members, borrowed from the spans and the event it is written from: the line is serialised
/// straight from them, with no key or value copied into a map (the same change made the Lambda host's EMF lines a
/// fifth cheaper). A later member of a name replaces the earlier in place, so the line has each name once.
#[derive(Default)]
struct Line<'a>(Vec<(&'a str, Member<'a>)>);

#[derive(Clone, Copy)]
enum Member<'a> {
    Json(&'a Value),
    Text(&'a str),
}

impl<'a> Line<'a> {
    fn put(&mut self, name: &'a str, member: Member<'a>) {
        match self.0.iter_mut().find(|(field, _)| *field == name) {
            Some(slot) => slot.1 = member,
            None => self.0.push((name, member)),
        }
    }

    fn put_all(&mut self, fields: &'a Fields) {
        for (name, value) in fields.iter() {
            self.put(name, Member::Json(value));
        }
    }
}

impl Serialize for Line<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut line = serializer.serialize_map(Some(self.0.len()))?;
        for (name, member) in &self.0 {
            match member {
                Member::Json(value) => line.serialize_entry(name, value)?,
                Member::Text(text) => line.serialize_entry(name, text)?,
            }
        }
        line.end()
    }
}
