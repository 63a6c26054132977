'use strict';

/**
 * Upper-cases the first letter of every word.
 */
function titleCase(text) {
  return text
    .split(' ')
    .map((word) => (word ? word[0].toUpperCase() + word.slice(1).toLowerCase() : word))
    .join(' ');
}

/**
 * Turns "Hello, World!" into "hello-world" for use in URLs.
 */
function slugify(text) {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/**
 * Converts camelCase or PascalCase to snake_case.
 */
function camelToSnake(name) {
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const c = name[i];
    if (c >= 'A' && c <= 'Z') {
      if (i > 0) {
        out += '_';
      }
      out += c.toLowerCase();
    } else {
      out += c;
    }
  }
  return out;
}

/**
 * Counts the vowels (a, e, i, o, u) in a string, ignoring case.
 */
function countVowels(text) {
  let count = 0;
  for (const c of text.toLowerCase()) {
    if ('aeiou'.includes(c)) {
      count++;
    }
  }
  return count;
}

/**
 * Parses lines of "key=value" into an object, skipping blanks and # comments.
 */
function parseKeyValues(text) {
  const result = {};
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) {
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) {
      continue;
    }
    result[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return result;
}

/**
 * Pads `text` on the left with `fill` until it is `width` characters long.
 */
function padLeft(text, width, fill = ' ') {
  let out = String(text);
  while (out.length < width) {
    out = fill + out;
  }
  return out;
}

/**
 * True when the two words use exactly the same letters, ignoring case and spaces.
 */
function isAnagram(a, b) {
  const normalize = (s) => s.toLowerCase().replace(/\s+/g, '').split('').sort().join('');
  return normalize(a) === normalize(b);
}

/**
 * Wraps text into lines no longer than `width`, breaking only between words.
 */
function wordWrap(text, width) {
  const lines = [];
  let current = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (current && current.length + 1 + word.length > width) {
      lines.push(current);
      current = word;
    } else {
      current = current ? current + ' ' + word : word;
    }
  }
  if (current) {
    lines.push(current);
  }
  return lines;
}

module.exports = { titleCase, slugify, camelToSnake, countVowels, parseKeyValues, padLeft, isAnagram, wordWrap };
