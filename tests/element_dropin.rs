//! `rtmpclientsink` as a drop-in for `rtmp2sink`: every property `gst-inspect-1.0 rtmp2sink`
//! lists at test time exists with a compatible type, the location and its parts agree with
//! each other as they do in `rtmp2sink` itself (both elements driven side by side), and
//! rtmp2sink-style pipelines publish to nginx-rtmp with the element name swapped.

#![cfg(feature = "gst")]

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use common::gstrun::{require_elements, run_to_eos};
use common::gstsrc::init;
use common::util::{is_ci, loud, private_plugin_dir};
use common::{NginxOptions, NginxRtmp, read_flv, require_binary};
use gst::glib;
use gst::prelude::*;

/// The rtmp2sink properties the issue names (GStreamer 1.22); the parse must find them all.
const RTMP2_PROPERTIES: &[&str] = &[
    "application",
    "host",
    "port",
    "scheme",
    "stream",
    "username",
    "password",
    "authmod",
    "timeout",
    "tls-validation-flags",
    "flash-version",
    "chunk-size",
    "stop-commands",
    "stats",
    "peak-kbps",
    "async-connect",
    "secure-token",
];

/// Secrets this element never reads back (documented in the README): writable as in
/// rtmp2sink, not readable.
const WRITE_ONLY_SECRETS: &[&str] = &["password", "secure-token"];

/// One property as `gst-inspect-1.0` prints it.
#[derive(Debug, Default)]
struct Inspected {
    readable: bool,
    writable: bool,
    /// The type line, e.g. `Unsigned Integer. Range: 0 - 17179869 Default: 0`.
    type_line: String,
    /// `(value, nick)` of enum and flags values.
    values: Vec<(i64, String)>,
    /// Field names of a structure's default value (`stats`).
    fields: Vec<String>,
}

/// Parses the "Element Properties" section of `gst-inspect-1.0` output.
fn parse_properties(text: &str) -> BTreeMap<String, Inspected> {
    let mut props = BTreeMap::new();
    let Some(start) = text.find("Element Properties:") else {
        return props;
    };
    let mut current: Option<String> = None;
    for line in text[start..].lines().skip(1) {
        // A property line: two spaces, the name, spaces, ':'.
        if let Some(rest) = line.strip_prefix("  ")
            && !rest.starts_with(' ')
            && let Some((name, _)) = rest.split_once(':')
        {
            let name = name.trim().to_string();
            props.insert(name.clone(), Inspected::default());
            current = Some(name);
            continue;
        }
        let Some(p) = current.as_ref().and_then(|n| props.get_mut(n)) else {
            continue;
        };
        let t = line.trim();
        if let Some(flags) = t.strip_prefix("flags:") {
            p.readable = flags.contains("readable");
            p.writable = flags.contains("writable");
        } else if p.type_line.is_empty() && !t.is_empty() {
            p.type_line = t.to_string();
        } else if let Some(v) = t.strip_prefix('(')
            && let Some((num, rest)) = v.split_once("):")
        {
            let nick = rest.split_whitespace().next().unwrap_or("").to_string();
            let value = match num.strip_prefix("0x") {
                Some(hex) => i64::from_str_radix(hex, 16).unwrap(),
                None => num.parse().unwrap(),
            };
            p.values.push((value, nick));
        } else if p
            .type_line
            .starts_with("Boxed pointer of type \"GstStructure\"")
            && let Some((field, _)) = t.split_once(": ")
            && !field.contains(' ')
        {
            p.fields.push(field.to_string());
        }
    }
    props
}

/// `Default: N` of a numeric type line.
fn default_number(type_line: &str) -> Option<i64> {
    let d = type_line.split("Default:").nth(1)?;
    d.split_whitespace()
        .next()?
        .trim_end_matches(',')
        .parse()
        .ok()
}

/// Whether `value` lies in the range of the numeric pspec `p`.
fn in_range(p: &glib::ParamSpec, value: i64) -> bool {
    if let Some(u) = p.downcast_ref::<glib::ParamSpecUInt>() {
        return (i64::from(u.minimum())..=i64::from(u.maximum())).contains(&value);
    }
    if let Some(i) = p.downcast_ref::<glib::ParamSpecInt>() {
        return (i64::from(i.minimum())..=i64::from(i.maximum())).contains(&value);
    }
    if let Some(u) = p.downcast_ref::<glib::ParamSpecUInt64>() {
        return value >= 0 && (u.minimum()..=u.maximum()).contains(&(value as u64));
    }
    if let Some(i) = p.downcast_ref::<glib::ParamSpecInt64>() {
        return (i.minimum()..=i.maximum()).contains(&value);
    }
    false
}

/// `(value, nick)` of every value of an enum or flags type.
fn values_of(t: glib::Type) -> Vec<(i64, String)> {
    if let Some(c) = glib::EnumClass::with_type(t) {
        return c
            .values()
            .iter()
            .map(|v| (i64::from(v.value()), v.nick().to_string()))
            .collect();
    }
    if let Some(c) = glib::FlagsClass::with_type(t) {
        return c
            .values()
            .iter()
            .map(|v| (i64::from(v.value()), v.nick().to_string()))
            .collect();
    }
    Vec::new()
}

/// Why our `p` is not compatible with rtmp2sink's `theirs` (None: it is).
fn incompatibility(name: &str, theirs: &Inspected, p: &glib::ParamSpec) -> Option<String> {
    let ours = p.value_type();
    let flags = p.flags();
    if theirs.writable && !flags.contains(glib::ParamFlags::WRITABLE) {
        return Some("not writable".into());
    }
    if theirs.readable
        && !flags.contains(glib::ParamFlags::READABLE)
        && !WRITE_ONLY_SECRETS.contains(&name)
    {
        return Some("not readable".into());
    }
    let t = theirs.type_line.as_str();
    let quoted = t.split('"').nth(1).unwrap_or("");
    let simple = [
        ("String.", glib::Type::STRING),
        ("Boolean.", glib::Type::BOOL),
        ("Unsigned Integer.", glib::Type::U32),
        ("Integer.", glib::Type::I32),
        ("Unsigned Integer64.", glib::Type::U64),
        ("Integer64.", glib::Type::I64),
    ];
    if let Some((_, want)) = simple.iter().find(|(prefix, _)| t.starts_with(prefix)) {
        if ours != *want {
            return Some(format!("type {ours}, rtmp2sink: {t}"));
        }
        if let Some(d) = default_number(t)
            && *want != glib::Type::BOOL
            && !in_range(p, d)
        {
            return Some(format!("rtmp2sink's default {d} is outside our range"));
        }
        return None;
    }
    if t.starts_with("Enum") || t.starts_with("Flags") {
        let kind_ok = if t.starts_with("Enum") {
            ours.is_a(glib::Type::ENUM)
        } else {
            ours.is_a(glib::Type::FLAGS)
        };
        if !kind_ok {
            return Some(format!("type {ours}, rtmp2sink: {t}"));
        }
        // GLib's own types are shared: the very same one (GTlsCertificateFlags).
        if quoted.starts_with('G') && !quoted.starts_with("Gst") && ours.name() != quoted {
            return Some(format!("type {}, rtmp2sink: {quoted}", ours.name()));
        }
        let ours_values = values_of(ours);
        for v in &theirs.values {
            if !ours_values.contains(v) {
                return Some(format!(
                    "value {} ({}) missing; ours: {ours_values:?}",
                    v.1, v.0
                ));
            }
        }
        return None;
    }
    if t.starts_with("Boxed pointer of type") || t.starts_with("Object of type") {
        return (ours.name() != quoted)
            .then(|| format!("type {}, rtmp2sink: {quoted}", ours.name()));
    }
    Some(format!("unknown type line {t:?}"))
}

/// `gst-inspect-1.0 rtmp2sink`, or None (skip; a failure under CI) when it is not installed.
fn inspect_rtmp2sink() -> Option<String> {
    if !require_binary("gst-inspect-1.0") {
        return None;
    }
    let out = Command::new("gst-inspect-1.0")
        .arg("rtmp2sink")
        .env_remove("GST_DEBUG")
        .output()
        .expect("run gst-inspect-1.0");
    if !out.status.success() {
        assert!(
            !is_ci(),
            "gst-inspect-1.0 rtmp2sink failed (gstreamer1.0-plugins-bad), and CI is set"
        );
        loud("\n*** SKIPPING TEST: no rtmp2sink (Debian gstreamer1.0-plugins-bad)\n");
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn every_rtmp2sink_property_exists_with_a_compatible_type() {
    let Some(text) = inspect_rtmp2sink() else {
        return;
    };
    let theirs = parse_properties(&text);
    for name in RTMP2_PROPERTIES {
        assert!(
            theirs.contains_key(*name),
            "the parse of gst-inspect-1.0 rtmp2sink lacks {name}: {:?}",
            theirs.keys()
        );
    }
    // The parse saw the values and flags (so the comparison below is not vacuous).
    assert_eq!(theirs["authmod"].values.len(), 3, "{:?}", theirs["authmod"]);
    assert!(
        theirs["tls-validation-flags"]
            .values
            .contains(&(0x7f, "validate-all".to_string()))
    );
    assert!(theirs["password"].readable && theirs["password"].writable);
    init();
    let el = gst::ElementFactory::make("rtmpclientsink").build().unwrap();
    let mut problems = Vec::new();
    for (name, p) in &theirs {
        match el.find_property(name) {
            None => problems.push(format!("{name}: missing")),
            Some(ours) => {
                if let Some(why) = incompatibility(name, p, &ours) {
                    problems.push(format!("{name}: {why}"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "incompatible with rtmp2sink:\n{}",
        problems.join("\n")
    );
    // rtmp2sink's statistics fields are there too.
    let stats = el.property::<gst::Structure>("stats");
    assert!(theirs["stats"].fields.len() >= 8, "{:?}", theirs["stats"]);
    for f in &theirs["stats"].fields {
        assert!(
            stats.has_field(f.as_str()),
            "stats lacks rtmp2sink's {f}: {stats}"
        );
    }
    // From 1.26 (not in this rtmp2sink): a string of AMF values.
    let extra = el
        .find_property("extra-connect-args")
        .expect("extra-connect-args");
    assert_eq!(extra.value_type(), glib::Type::STRING);
    // The checker itself rejects what is incompatible.
    let bogus = Inspected {
        readable: true,
        writable: true,
        type_line: "Integer. Range: 0 - 10 Default: 5".into(),
        values: vec![],
        fields: vec![],
    };
    assert!(
        incompatibility(
            "chunk-size",
            &bogus,
            &el.find_property("chunk-size").unwrap()
        )
        .is_some()
    );
}

/// One step of the side-by-side comparison.
enum Step {
    Str(&'static str, &'static str),
    Int(&'static str, i32),
    Enum(&'static str, &'static str),
}

fn apply(el: &gst::Element, step: &Step) {
    match *step {
        Step::Str(name, v) => el.set_property(name, v),
        Step::Int(name, v) => el.set_property(name, v),
        Step::Enum(name, nick) => el.set_property_from_str(name, nick),
    }
}

/// What the location properties read back, as text.
fn location_view(el: &gst::Element) -> Vec<(String, String)> {
    [
        "location",
        "scheme",
        "host",
        "port",
        "application",
        "stream",
    ]
    .iter()
    .map(|name| {
        let v = el.property_value(name);
        let text = if let Ok(Some(s)) = v.get::<Option<String>>() {
            s
        } else if let Ok(i) = v.get::<i32>() {
            i.to_string()
        } else if let Some((_, ev)) = glib::EnumValue::from_value(&v) {
            ev.nick().to_string()
        } else {
            String::new()
        };
        (name.to_string(), text)
    })
    .collect()
}

#[test]
fn location_and_its_parts_agree_both_ways_as_in_rtmp2sink() {
    init();
    let Ok(rtmp2) = gst::ElementFactory::make("rtmp2sink").build() else {
        assert!(
            !is_ci(),
            "no rtmp2sink (gstreamer1.0-plugins-bad), and CI is set"
        );
        loud("\n*** SKIPPING TEST: no rtmp2sink (Debian gstreamer1.0-plugins-bad)\n");
        return;
    };
    let ours = gst::ElementFactory::make("rtmpclientsink").build().unwrap();
    let steps = [
        Step::Str("location", "rtmp://example.com/live/key"),
        Step::Str("host", "other.example.org"),
        Step::Int("port", 1940),
        Step::Enum("scheme", "rtmps"),
        Step::Str("location", "rtmps://ingest.example.net/app/inst/key2"),
        Step::Int("port", 443),
        Step::Str("application", "app2"),
        Step::Str("stream", "key3?token=abc"),
        Step::Str("location", "rtmp://user:pa%3Ass@[::1]:1936/live/k"),
        Step::Enum("scheme", "rtmp"),
        Step::Int("port", 1935),
        Step::Str("host", "127.0.0.1"),
    ];
    for (i, step) in steps.iter().enumerate() {
        apply(&rtmp2, step);
        apply(&ours, step);
        assert_eq!(
            location_view(&ours),
            location_view(&rtmp2),
            "after step {i} the location properties differ from rtmp2sink's"
        );
    }
    // The last state is what gets published to.
    assert_eq!(
        ours.property::<Option<String>>("location").as_deref(),
        Some("rtmp://127.0.0.1/live/k")
    );
}

#[test]
fn rtmp2sink_style_pipelines_publish_with_the_name_swapped() {
    if !require_elements(&[
        "videotestsrc",
        "x264enc",
        "audiotestsrc",
        "voaacenc",
        "flvmux",
    ]) {
        return;
    }
    let Some(nginx) = NginxRtmp::start(NginxOptions::default().record(true)) else {
        return;
    };
    let port = nginx.port();
    // rtmp2sink's documented example (`videotestsrc ! x264enc ! flvmux ! rtmp2sink
    // location=...`) with the name swapped, and with audio through flvmux; then without
    // flvmux (this element takes the encoder's output itself), with the location given as
    // rtmp2sink's parts, and with audio on the request pad.
    let pipelines = [
        (
            "documented",
            format!(
                "videotestsrc num-buffers=60 ! x264enc ! flvmux ! rtmpclientsink \
                 location=rtmp://127.0.0.1:{port}/live/documented"
            ),
        ),
        (
            "flvaudio",
            format!(
                "videotestsrc num-buffers=60 ! x264enc ! flvmux name=m streamable=true ! \
                 rtmpclientsink location=rtmp://127.0.0.1:{port}/live/flvaudio \
                 audiotestsrc num-buffers=60 ! voaacenc ! m."
            ),
        ),
        (
            "elementary",
            format!(
                "videotestsrc num-buffers=60 ! x264enc ! rtmpclientsink \
                 location=rtmp://127.0.0.1:{port}/live/elementary"
            ),
        ),
        (
            "parts",
            format!(
                "videotestsrc num-buffers=60 ! x264enc key-int-max=30 ! rtmpclientsink \
                 host=127.0.0.1 port={port} application=live stream=parts scheme=rtmp \
                 async-connect=false timeout=5 chunk-size=4096 peak-kbps=0 \
                 stop-commands=fcunpublish+deletestream tls-validation-flags=validate-all \
                 flash-version=\"FMLE/3.0 (compatible; FMSc/1.0)\""
            ),
        ),
        (
            "withaudio",
            format!(
                "videotestsrc num-buffers=60 ! x264enc ! s. \
                 audiotestsrc num-buffers=60 ! voaacenc ! s.audio \
                 rtmpclientsink name=s location=rtmp://127.0.0.1:{port}/live/withaudio"
            ),
        ),
    ];
    for (stream, launch) in &pipelines {
        run_to_eos(launch, Duration::from_secs(30));
        let path = nginx
            .wait_recording(stream, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{stream}: no recording"));
        let flv = read_flv(&path).unwrap_or_else(|e| panic!("{stream}: {e}"));
        let video = flv.tags.iter().filter(|t| t.tag_type == 9).count();
        // Sequence header + 60 frames + the AVC end of sequence at EOS, on the stream's
        // timeline (30 fps).
        assert_eq!(video, 62, "{stream}: video tags in the recording");
        let last = flv.tags.iter().rev().find(|t| t.tag_type == 9).unwrap();
        assert!(
            (1900..=2050).contains(&last.timestamp),
            "{stream}: last video frame at {} ms",
            last.timestamp
        );
        if *stream == "withaudio" || *stream == "flvaudio" {
            // 60 buffers of 1024 samples: about 60 AAC frames after the sequence header.
            let audio = flv.tags.iter().filter(|t| t.tag_type == 8).count();
            assert!((55..=62).contains(&audio), "{stream}: {audio} audio tags");
        }
    }
}

#[test]
fn gst_inspect_documents_every_property_of_the_element() {
    if !require_binary("gst-inspect-1.0") {
        return;
    }
    let dir = common::TempDir::new("dropin-inspect");
    let plugins = private_plugin_dir(&dir);
    let out = Command::new("gst-inspect-1.0")
        .arg("rtmpclientsink")
        .env("GST_PLUGIN_PATH", &plugins)
        .env("GST_REGISTRY", dir.join("registry.bin"))
        .env_remove("GST_PLUGIN_PATH_1_0")
        .env_remove("GST_REGISTRY_1_0")
        .env_remove("GST_DEBUG")
        .output()
        .expect("run gst-inspect-1.0");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "gst-inspect-1.0 rtmpclientsink: {text}"
    );
    let inspected = parse_properties(&text);
    init();
    let el = gst::ElementFactory::make("rtmpclientsink").build().unwrap();
    let own = el.type_();
    let mut undocumented = Vec::new();
    for p in el
        .list_properties()
        .iter()
        .filter(|p| p.owner_type() == own)
    {
        let name = p.name();
        // The blurb is the line right after the name in gst-inspect's output.
        let line = text
            .lines()
            .find(|l| {
                l.trim_start().starts_with(&format!("{name} "))
                    || l.trim_start().starts_with(&format!("{name}:"))
            })
            .unwrap_or("");
        let blurb = line.split_once(':').map_or("", |(_, b)| b.trim());
        if !inspected.contains_key(name) || blurb.split_whitespace().count() < 5 {
            undocumented.push(format!("{name}: {blurb:?}"));
        }
    }
    assert!(
        undocumented.is_empty(),
        "thinly documented: {undocumented:?}"
    );
    for needle in [
        "rtmp-ingest-warning",
        "peak-kbps",
        "GTlsCertificateFlags",
        "audio",
    ] {
        assert!(
            text.contains(needle),
            "gst-inspect-1.0 output lacks {needle}"
        );
    }
}
