//! The overview's figures, read from the text `/metrics` renders: the same
//! registry, no second bookkeeping. Series are summed across their labels.

/// One sample line: its metric name, its labels' text and its value.
fn samples(text: &str) -> impl Iterator<Item = (&str, &str, f64)> {
    text.lines().filter(|l| !l.starts_with('#')).filter_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let value: f64 = value.parse().ok()?;
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        Some((name, labels, value))
    })
}

/// The sum of every series of `name` whose labels pass `keep`.
pub(super) fn sum(text: &str, name: &str, keep: impl Fn(&str) -> bool) -> f64 {
    samples(text)
        .filter(|(n, labels, _)| *n == name && keep(labels))
        .map(|(_, _, v)| v)
        // An empty sum of floats is -0.0.
        .fold(0.0, |a, b| a + b)
}

/// The mean of a histogram (its `_sum` over its `_count`), if it counted any.
pub(super) fn mean(text: &str, histogram: &str) -> Option<f64> {
    let count = sum(text, &format!("{histogram}_count"), |_| true);
    (count > 0.0).then(|| sum(text, &format!("{histogram}_sum"), |_| true) / count)
}

/// The upper bound of the bucket holding quantile `q` of a histogram
/// (Prometheus' `histogram_quantile` without interpolation): "at most".
pub(super) fn quantile(text: &str, histogram: &str, q: f64) -> Option<f64> {
    let name = format!("{histogram}_bucket");
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for (n, labels, v) in samples(text) {
        if n != name {
            continue;
        }
        let le = labels
            .split(',')
            .find_map(|l| l.strip_prefix("le=\""))
            .map(|l| l.trim_end_matches('"'))?;
        let bound = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
        match buckets.iter_mut().find(|(b, _)| *b == bound) {
            Some(slot) => slot.1 += v,
            None => buckets.push((bound, v)),
        }
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    buckets.into_iter().find(|(_, c)| *c >= q * total).map(|(b, _)| b)
}

/// Seconds for people: `12 ms`, `1.5 s`, `—` when unknown.
pub(super) fn seconds(s: Option<f64>) -> String {
    match s {
        None => "—".into(),
        Some(s) if s.is_infinite() => "over the largest bucket".into(),
        Some(s) if s < 0.001 => format!("{:.0} µs", s * 1_000_000.0),
        Some(s) if s < 1.0 => format!("{:.1} ms", s * 1000.0),
        Some(s) => format!("{s:.2} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# TYPE sgbridge_http_requests counter
sgbridge_http_requests_total{dialect="cf",route="/v2/info",method="GET",status="200"} 7
sgbridge_http_requests_total{dialect="cf",route="/v2/info",method="GET",status="503"} 2
sgbridge_wait_bucket{le="0.1"} 1
sgbridge_wait_bucket{le="1.0"} 9
sgbridge_wait_bucket{le="+Inf"} 10
sgbridge_wait_sum 4.0
sgbridge_wait_count 10
"#;

    #[test]
    fn sums_means_and_quantiles() {
        assert_eq!(sum(TEXT, "sgbridge_http_requests_total", |_| true), 9.0);
        assert_eq!(
            sum(TEXT, "sgbridge_http_requests_total", |l| l.contains("status=\"5")),
            2.0
        );
        assert_eq!(mean(TEXT, "sgbridge_wait"), Some(0.4));
        assert_eq!(quantile(TEXT, "sgbridge_wait", 0.5), Some(1.0));
        assert_eq!(quantile(TEXT, "sgbridge_wait", 0.1), Some(0.1));
        assert_eq!(quantile(TEXT, "sgbridge_wait", 0.99), Some(f64::INFINITY));
        assert_eq!(quantile(TEXT, "sgbridge_nothing", 0.5), None);
        assert_eq!(seconds(Some(0.0123)), "12.3 ms");
    }
}
