//! Typed CSM event. Every field the SDKs send has a slot; unknown fields are kept verbatim.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Whether a field carries a JSON string or a JSON integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Str,
    Int,
}

/// A known field's value, borrowed from the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValue<'a> {
    Str(&'a str),
    Int(i64),
}

/// The `Type` of a CSM event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventType<'a> {
    ApiCall,
    ApiCallAttempt,
    /// A type this version does not know; kept so newer SDKs are not rejected.
    Other(Cow<'a, str>),
}

impl EventType<'_> {
    pub fn as_str(&self) -> &str {
        match self {
            EventType::ApiCall => "ApiCall",
            EventType::ApiCallAttempt => "ApiCallAttempt",
            EventType::Other(other) => other,
        }
    }
}

/// The credential field that must never be stored: it is read past, not into, the model.
const SESSION_TOKEN: &str = "SessionToken";

/// Names the recorder adds to every record (see [`crate::record::Record`]). A datagram's own field
/// by one of these names, or by any known field's name in other letter case, is dropped: it would
/// give the record two keys that case-insensitive readers such as Athena's JSON SerDe take as one.
pub const RECORDER_FIELDS: &[&str] = &[
    "functionName",
    "functionVersion",
    "awsRequestId",
    "candidateRequestIds",
    "phase",
    "coldStart",
    "recordedAt",
];

fn is_reserved(key: &str) -> bool {
    RECORDER_FIELDS
        .iter()
        .chain(FIELDS.iter().map(|(name, _)| name))
        .any(|name| name.eq_ignore_ascii_case(key))
}

/// The access key id: not a secret, kept unless the recorder is told to drop it.
const ACCESS_KEY: &str = "AccessKey";

macro_rules! csm_event {
    ($( $field:ident : $kind:ident = $json:literal ),* $(,)?) => {
        /// One CSM datagram, parsed. Strings borrow from the datagram where no unescaping was needed.
        #[derive(Debug, Clone)]
        pub struct CsmEvent<'a> {
            pub event_type: EventType<'a>,
            $( pub $field: csm_event!(@ty $kind), )*
            /// Fields this version does not know, in arrival order, as raw JSON.
            pub extra: Vec<(Cow<'a, str>, Cow<'a, RawValue>)>,
            /// Parsing left something out or changed it (a session token, a dropped access key, a
            /// repeated key, a null, a multi-line value): the datagram's own text is not a faithful
            /// copy of this event, so it must be serialized anew.
            pub altered: bool,
            /// The datagram's own text, when it is a faithful copy of this event on one line.
            pub(super) source_json: Option<&'a str>,
        }

        /// Every known field's JSON name and kind, `Type` first, in the order the recorder writes them.
        pub const FIELDS: &[(&str, FieldKind)] = &[
            ("Type", FieldKind::Str),
            $( ($json, csm_event!(@kind $kind)), )*
        ];

        impl<'a> CsmEvent<'a> {
            /// The datagram's own text when it is a faithful, single-line copy of this event, so
            /// it can be stored as it is instead of serialized anew.
            pub fn source_json(&self) -> Option<&'a str> {
                self.source_json
            }

            /// Every known field's value, in [`FIELDS`] order (`Type` first); `None` when absent.
            pub fn values(&self) -> [Option<FieldValue<'_>>; FIELDS.len()] {
                [
                    Some(FieldValue::Str(self.event_type.as_str())),
                    $( csm_event!(@value self.$field, $kind), )*
                ]
            }

            /// The value of a known field by its JSON name, rendered as text (`None` when absent).
            pub fn field_text(&self, name: &str) -> Option<Cow<'_, str>> {
                match name {
                    "Type" => Some(Cow::Borrowed(self.event_type.as_str())),
                    $( $json => csm_event!(@text self.$field, $kind), )*
                    _ => None,
                }
            }

            fn set_field<A: MapAccess<'a>>(
                &mut self,
                key: &str,
                map: &mut A,
                drop_access_key: bool,
            ) -> Result<bool, A::Error> {
                match key {
                    $( $json => {
                        let value = csm_event!(@read map, $kind);
                        let dropped = drop_access_key && $json == ACCESS_KEY;
                        self.altered |= dropped || value.is_none() || self.$field.is_some();
                        self.$field = if dropped { None } else { value };
                    } )*
                    _ => return Ok(false),
                }
                Ok(true)
            }

            fn serialize_known<M: SerializeMap>(&self, out: &mut M) -> Result<(), M::Error> {
                out.serialize_entry("Type", self.event_type.as_str())?;
                $( if let Some(value) = &self.$field { out.serialize_entry($json, value)?; } )*
                Ok(())
            }

            fn empty(event_type: EventType<'a>) -> Self {
                CsmEvent { event_type, $( $field: None, )* extra: Vec::new(), altered: false, source_json: None }
            }
        }
    };
    (@ty Str) => { Option<Cow<'a, str>> };
    (@ty Int) => { Option<i64> };
    (@kind Str) => { FieldKind::Str };
    (@kind Int) => { FieldKind::Int };
    (@value $value:expr, Str) => { $value.as_deref().map(FieldValue::Str) };
    (@value $value:expr, Int) => { $value.map(FieldValue::Int) };
    (@text $value:expr, Str) => { $value.as_deref().map(Cow::Borrowed) };
    (@text $value:expr, Int) => { $value.map(|n| Cow::Owned(n.to_string())) };
    (@read $map:ident, Str) => { $map.next_value::<Option<CowStr<'a>>>()?.map(|s| s.0) };
    (@read $map:ident, Int) => { $map.next_value::<Option<i64>>()? };
}

csm_event! {
    version: Int = "Version",
    client_id: Str = "ClientId",
    service: Str = "Service",
    api: Str = "Api",
    timestamp: Int = "Timestamp",
    attempt_count: Int = "AttemptCount",
    latency: Int = "Latency",
    max_retries_exceeded: Int = "MaxRetriesExceeded",
    final_http_status_code: Int = "FinalHttpStatusCode",
    final_aws_exception: Str = "FinalAwsException",
    final_aws_exception_message: Str = "FinalAwsExceptionMessage",
    final_sdk_exception: Str = "FinalSdkException",
    final_sdk_exception_message: Str = "FinalSdkExceptionMessage",
    region: Str = "Region",
    user_agent: Str = "UserAgent",
    fqdn: Str = "Fqdn",
    attempt_latency: Int = "AttemptLatency",
    http_status_code: Int = "HttpStatusCode",
    access_key: Str = "AccessKey",
    x_amzn_request_id: Str = "XAmznRequestId",
    x_amz_request_id: Str = "XAmzRequestId",
    x_amz_id2: Str = "XAmzId2",
    aws_exception: Str = "AwsException",
    aws_exception_message: Str = "AwsExceptionMessage",
    sdk_exception: Str = "SdkException",
    sdk_exception_message: Str = "SdkExceptionMessage",
}

/// A string that borrows from the input when it needs no unescaping.
struct CowStr<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CowStrVisitor;
        impl<'de> Visitor<'de> for CowStrVisitor {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(CowStrVisitor)
    }
}

/// Deserializes a CSM object; `drop_access_key` leaves `AccessKey` out.
pub(crate) struct EventSeed {
    pub drop_access_key: bool,
}

impl<'de> de::DeserializeSeed<'de> for EventSeed {
    type Value = CsmEvent<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EventSeed {
    type Value = CsmEvent<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a CSM event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut event = CsmEvent::empty(EventType::Other(Cow::Borrowed("")));
        let mut seen_type = false;
        while let Some(key) = map.next_key::<CowStr<'de>>()? {
            let key = key.0;
            if key == "Type" {
                event.altered |= seen_type;
                let value: CowStr<'de> = map.next_value()?;
                event.event_type = match value.0.as_ref() {
                    "ApiCall" => EventType::ApiCall,
                    "ApiCallAttempt" => EventType::ApiCallAttempt,
                    _ => EventType::Other(value.0),
                };
                seen_type = true;
            } else if key == SESSION_TOKEN {
                // A live credential: skipped without ever being copied out of the datagram.
                map.next_value::<IgnoredAny>()?;
                event.altered = true;
            } else if event.set_field(&key, &mut map, self.drop_access_key)? {
                // A known field, stored.
            } else if is_reserved(&key) {
                map.next_value::<IgnoredAny>()?;
                event.altered = true;
            } else {
                let raw: &'de RawValue = map.next_value()?;
                let raw = compact_raw(raw).map_err(de::Error::custom)?;
                event.altered |= matches!(raw, Cow::Owned(_));
                if let Some(slot) = event.extra.iter_mut().find(|(name, _)| *name == key) {
                    event.altered = true;
                    slot.1 = raw;
                } else {
                    event.extra.push((key, raw));
                }
            }
        }
        if !seen_type {
            return Err(de::Error::missing_field("Type"));
        }
        Ok(event)
    }
}

impl Serialize for CsmEvent<'_> {
    /// Writes compact JSON: known fields in [`FIELDS`] order, then unknown fields as received.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_map(None)?;
        self.serialize_known(&mut out)?;
        for (name, value) in &self.extra {
            out.serialize_entry(name.as_ref(), value.as_ref())?;
        }
        out.end()
    }
}

/// Unknown values are kept verbatim, except that nested ones are checked against serde_json's depth
/// limit (raw values skip it) and multi-line ones are compacted, which JSON Lines output needs.
fn compact_raw(raw: &RawValue) -> Result<Cow<'_, RawValue>, serde_json::Error> {
    let text = raw.get();
    // Containers are checked for depth; numbers for range (a raw value skips both checks, and a
    // number no JSON reader can hold would break every consumer of the record).
    let checked = text.starts_with([
        '[', '{', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9',
    ]);
    if !checked && !text.contains(['\n', '\r']) {
        return Ok(Cow::Borrowed(raw));
    }
    let value: serde_json::Value = serde_json::from_str(text)?;
    if !text.contains(['\n', '\r']) {
        return Ok(Cow::Borrowed(raw));
    }
    Ok(Cow::Owned(serde_json::value::to_raw_value(&value)?))
}
