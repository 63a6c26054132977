//! Small statistics helpers over slices of numbers.

use std::collections::HashMap;

/// Arithmetic mean of `values`, or `None` when the slice is empty.
pub fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    Some(values.iter().sum::<f64>() / values.len() as f64)
}

/// Median of `values`; the average of the two middle values for even lengths.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 0 {
        Some((sorted[mid - 1] + sorted[mid]) / 2.0)
    } else {
        Some(sorted[mid])
    }
}

/// The most common value; ties go to the smallest one.
pub fn mode(values: &[i64]) -> Option<i64> {
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for &v in values {
        *counts.entry(v).or_insert(0) += 1;
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(value, _)| value)
}

/// Population standard deviation of `values`.
pub fn std_dev(values: &[f64]) -> Option<f64> {
    let m = mean(values)?;
    let variance = values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / values.len() as f64;
    Some(variance.sqrt())
}

/// Running average after each element: the i-th output is the mean of the first i + 1 inputs.
pub fn running_average(values: &[f64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(values.len());
    let mut total = 0.0;
    for (i, v) in values.iter().enumerate() {
        total += v;
        out.push(total / (i + 1) as f64);
    }
    out
}

/// Smallest and largest value, or `None` for an empty slice.
pub fn min_max(values: &[i64]) -> Option<(i64, i64)> {
    let mut iter = values.iter();
    let first = *iter.next()?;
    let mut lo = first;
    let mut hi = first;
    for &v in iter {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    Some((lo, hi))
}

/// Counts values into `bins` equal-width buckets spanning [lo, hi); values outside are ignored.
pub fn histogram(values: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<usize> {
    let mut counts = vec![0; bins];
    if bins == 0 || hi <= lo {
        return counts;
    }
    let width = (hi - lo) / bins as f64;
    for &v in values {
        if v >= lo && v < hi {
            let index = (((v - lo) / width) as usize).min(bins - 1);
            counts[index] += 1;
        }
    }
    counts
}

/// Scales every value linearly into [0, 1]; a constant input maps to all zeros.
pub fn normalize(values: &[f64]) -> Vec<f64> {
    let lo = values.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let span = hi - lo;
    values
        .iter()
        .map(|v| if span > 0.0 { (v - lo) / span } else { 0.0 })
        .collect()
}

/// Percentage change from `old` to `new`, or `None` when `old` is zero.
pub fn percent_change(old: f64, new: f64) -> Option<f64> {
    if old == 0.0 {
        None
    } else {
        Some((new - old) / old.abs() * 100.0)
    }
}
