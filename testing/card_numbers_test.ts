import assert from "node:assert/strict";
import { findCardNumbers, findCardNumbersInFile, luhnValid } from "./card_numbers.ts";

Deno.test("card number finder", async (t) => {
  await t.step("Luhn check", () => {
    assert.equal(luhnValid("4242424242424242"), true);
    assert.equal(luhnValid("5555555555554444"), true);
    assert.equal(luhnValid("378282246310005"), true);
    assert.equal(luhnValid("4242424242424241"), false);
    assert.equal(luhnValid("42a2"), false);
  });

  await t.step("finds plain, spaced and dashed card numbers in text", () => {
    assert.deepEqual(findCardNumbers("card 4242424242424242 ok"), ["4242424242424242"]);
    assert.deepEqual(findCardNumbers('{"pan":"4242 4242 4242 4242"}'), ["4242 4242 4242 4242"]);
    assert.deepEqual(findCardNumbers("x=5555-5555-5555-4444;"), ["5555-5555-5555-4444"]);
    assert.deepEqual(findCardNumbers("amex 3782 822463 10005."), ["3782 822463 10005"]);
    assert.deepEqual(findCardNumbers("a 4222222222222 b"), ["4222222222222"]);
    assert.deepEqual(findCardNumbers("4242424242424242 5 pizzas"), ["4242424242424242"]);
    assert.deepEqual(findCardNumbers("two: 4242424242424242, 5555555555554444"), [
      "4242424242424242",
      "5555555555554444",
    ]);
  });

  await t.step("ignores what is not a card number", () => {
    assert.deepEqual(findCardNumbers("last4 4242, amount 750"), []);
    assert.deepEqual(findCardNumbers("4242424242424241"), [], "fails Luhn");
    assert.deepEqual(findCardNumbers("424242424242"), [], "12 digits");
    assert.deepEqual(findCardNumbers("42424242424242424242"), [], "20 digits");
    assert.deepEqual(findCardNumbers("4242424242424242-1"), [], "dashed to more digits");
    assert.deepEqual(findCardNumbers("ab4242424242424242"), [], "glued to letters");
    assert.deepEqual(findCardNumbers("4242424242424242cd"), [], "glued to letters");
    assert.deepEqual(findCardNumbers("4242  4242  4242  4242"), [], "double spaces");
    // An epoch-ms timestamp that passes Luhn is no card (industry 1).
    assert.equal(luhnValid("1730000000001"), true);
    assert.deepEqual(findCardNumbers('{"ts":1730000000001}'), []);
    assert.deepEqual(
      findCardNumbers("id 42424242-4242-4242-a242-424242424242"),
      [],
      "UUID-like ids",
    );
    assert.deepEqual(findCardNumbers("tok_visa pi_sim_000001"), []);
  });

  await t.step("scans a file's bytes", async () => {
    const path = await Deno.makeTempFile();
    try {
      await Deno.writeFile(
        path,
        new Uint8Array([0, 1, 2, ...new TextEncoder().encode("4111111111111111"), 0xff]),
      );
      assert.deepEqual(await findCardNumbersInFile(path), ["4111111111111111"]);
    } finally {
      await Deno.remove(path);
    }
  });
});

Deno.test("card numbers: decimal fractions are not cards", () => {
  assert.deepEqual(findCardNumbers('{"temperatureC":210.79551383095524}'), []);
  assert.deepEqual(findCardNumbers("paid with 4242424242424242."), ["4242424242424242"]);
});
