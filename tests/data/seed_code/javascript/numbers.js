'use strict';

/**
 * Greatest common divisor of two non-negative integers (Euclid's algorithm).
 */
function gcd(a, b) {
  while (b !== 0) {
    [a, b] = [b, a % b];
  }
  return a;
}

/**
 * Sum of the decimal digits of `n`, ignoring its sign.
 */
function digitSum(n) {
  let total = 0;
  for (const ch of String(Math.abs(n))) {
    total += Number(ch);
  }
  return total;
}

/**
 * True when `n` is a prime number.
 */
function isPrime(n) {
  if (n < 2) {
    return false;
  }
  for (let d = 2; d * d <= n; d++) {
    if (n % d === 0) {
      return false;
    }
  }
  return true;
}

/**
 * How many elements of `values` are strictly greater than `threshold`.
 */
function countAbove(values, threshold) {
  return values.filter((v) => v > threshold).length;
}

/**
 * The running totals of `values`: element i is the sum of the first i + 1 values.
 */
function prefixSums(values) {
  const sums = [];
  let total = 0;
  for (const v of values) {
    total += v;
    sums.push(total);
  }
  return sums;
}

module.exports = { gcd, digitSum, isPrime, countAbove, prefixSums };
