'use strict';

/**
 * Splits an array into consecutive chunks of at most `size` elements.
 */
function chunk(items, size) {
  if (size <= 0) {
    throw new RangeError('size must be positive');
  }
  const chunks = [];
  for (let i = 0; i < items.length; i += size) {
    chunks.push(items.slice(i, i + size));
  }
  return chunks;
}

/**
 * Groups items by the key that `keyOf` returns for each of them.
 */
function groupBy(items, keyOf) {
  const groups = {};
  for (const item of items) {
    const key = keyOf(item);
    if (!(key in groups)) {
      groups[key] = [];
    }
    groups[key].push(item);
  }
  return groups;
}

/**
 * Returns the items with duplicates removed, keeping the first occurrence.
 */
function unique(items) {
  const seen = new Set();
  const result = [];
  for (const item of items) {
    if (!seen.has(item)) {
      seen.add(item);
      result.push(item);
    }
  }
  return result;
}

/**
 * Counts how many times each value appears, as a Map from value to count.
 */
function countBy(items) {
  const counts = new Map();
  for (const item of items) {
    counts.set(item, (counts.get(item) || 0) + 1);
  }
  return counts;
}

/**
 * Flattens nested arrays up to `depth` levels deep.
 */
function flatten(items, depth = 1) {
  const result = [];
  for (const item of items) {
    if (Array.isArray(item) && depth > 0) {
      result.push(...flatten(item, depth - 1));
    } else {
      result.push(item);
    }
  }
  return result;
}

/**
 * Pairs up elements of two arrays, stopping at the shorter one.
 */
function zip(left, right) {
  const length = Math.min(left.length, right.length);
  const pairs = [];
  for (let i = 0; i < length; i++) {
    pairs.push([left[i], right[i]]);
  }
  return pairs;
}

/**
 * Averages of every window of `size` consecutive numbers.
 */
function movingAverage(values, size) {
  const averages = [];
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    sum += values[i];
    if (i >= size) {
      sum -= values[i - size];
    }
    if (i >= size - 1) {
      averages.push(sum / size);
    }
  }
  return averages;
}

/**
 * Splits items into those that pass `test` and those that do not.
 */
function partition(items, test) {
  const passed = [];
  const failed = [];
  for (const item of items) {
    (test(item) ? passed : failed).push(item);
  }
  return [passed, failed];
}

/**
 * The `n` most frequent values, most frequent first; ties keep first-seen order.
 */
function topN(items, n) {
  const counts = countBy(items);
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([value]) => value);
}

module.exports = { chunk, groupBy, unique, countBy, flatten, zip, movingAverage, partition, topN };
