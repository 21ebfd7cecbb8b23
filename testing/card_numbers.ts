/**
 * Finds anything that looks like a payment card number in text, so tests can
 * assert that none reached a journal, a log line or a published message.
 */

/**
 * Runs of digits joined by single spaces or dashes, not glued to letters or
 * digits nor dashed to them (so UUIDs and hex ids do not count), nor the
 * fraction of a decimal number (a temperature like 210.79551383095524).
 */
const digitRun = /(?<![A-Za-z0-9.])(?<![A-Za-z0-9]-)\d(?:[ -]?\d)*(?![A-Za-z0-9])(?!-[A-Za-z0-9])/g;

/** True when `digits` passes the Luhn (mod 10) check. */
export function luhnValid(digits: string): boolean {
  if (!/^\d+$/.test(digits)) return false;
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/**
 * Every card-number-like run in `text`: 13–19 digits (spaces or dashes between
 * them allowed) that pass the Luhn check and start with a payment-card major
 * industry identifier (2–6, ISO/IEC 7812). The prefix rule keeps epoch-ms
 * timestamps (13 digits starting with 1) from counting as cards.
 *
 * @example
 * ```ts
 * findCardNumbers("paid with 4242 4242 4242 4242"); // ["4242 4242 4242 4242"]
 * ```
 */
export function findCardNumbers(text: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(digitRun)) {
    // A space may end a card number as well as group it: try every stretch of
    // space-separated groups.
    const groups = match[0].split(" ");
    for (let from = 0; from < groups.length; from++) {
      for (let to = from + 1; to <= groups.length; to++) {
        const stretch = groups.slice(from, to).join(" ");
        const digits = stretch.replace(/[ -]/g, "");
        if (digits.length > 19) break;
        if (digits.length >= 13 && /^[2-6]/.test(digits) && luhnValid(digits)) {
          found.push(stretch);
        }
      }
    }
  }
  return found;
}

/** Card-number-like runs in the bytes of a file, read as Latin-1 (works for SQLite files). */
export async function findCardNumbersInFile(path: string): Promise<string[]> {
  const bytes = await Deno.readFile(path);
  return findCardNumbers(new TextDecoder("latin1").decode(bytes));
}
