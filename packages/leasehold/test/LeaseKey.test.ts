/**
 * Keys and their Redis names: which strings are keys, and that every key, braces and percent signs included, gets
 * Redis names that share one Cluster slot and that no other key shares. The slot is computed here as Redis computes
 * it (CRC16/XMODEM of the hash tag's bytes, modulo 16384), checked against the Cluster spec and the slots of issue 9.
 */
import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import fc from "fast-check"
import { LeaseKey, LeaseStore } from "leasehold"

/** CRC16/XMODEM (polynomial 0x1021, initial value 0), the checksum of Redis Cluster's key slots. */
const crc16 = (bytes: Uint8Array): number => {
  let crc = 0
  for (const byte of bytes) {
    crc ^= byte << 8
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  }
  return crc
}

const utf8 = (text: string): Uint8Array => Buffer.from(text, "utf8")

/** The bytes Redis hashes for a key: those between the first `{` and the next `}`, or the whole key if none are. */
const hashedPart = (bytes: Uint8Array): Uint8Array => {
  const open = bytes.indexOf(0x7b)
  if (open === -1) return bytes
  const close = bytes.indexOf(0x7d, open + 1)
  return close === -1 || close === open + 1 ? bytes : bytes.subarray(open + 1, close)
}

/** The Cluster slot of a Redis key (Redis's `keyHashSlot`). */
const keySlot = (redisKey: string): number => crc16(hashedPart(utf8(redisKey))) & 16383

const isKey = (text: string) => Result.isSuccess(LeaseKey.decode(text))

/** Units that stress the encoding (braces, the escape character and what it escapes to) and lone surrogates. */
const tricky = ["{", "}", "%", "7", "D", "2", "5", ":", "a", "\uD800", "\uDBFF", "\uDC00", "\uFFFD", "🔒"]
const unit = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...tricky) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) }
)
const anyString = fc.string({ unit, maxLength: 24 })
const anyKey = anyString.filter(isKey)
const prefix = fc
  .oneof(fc.constantFrom("lease:", "", "app:lease:", "}{"), fc.string({ unit, maxLength: 8 }))
  .filter((text) => !/[{}]/.test(text))

describe("LeaseKey", () => {
  it("the key-slot function here is Redis's (the Cluster spec's check value, the slots issue 9 measured)", () => {
    assert.strictEqual(crc16(utf8("123456789")), 0x31c3)
    assert.strictEqual(keySlot("lease:{}}"), 3899)
    assert.strictEqual(keySlot("lease:{}}:fence"), 2914)
    assert.strictEqual(keySlot("lease:{}abc}"), 7897)
    assert.strictEqual(keySlot("lease:{}abc}:fence"), 11209)
    assert.strictEqual(keySlot("{user1000}.following"), keySlot("{user1000}.followers"))
    assert.strictEqual(keySlot("foo{}{bar}"), crc16(utf8("foo{}{bar}")) & 16383)
  })

  it("a key is a non-empty, well-formed string of at most 512 characters without control characters", () => {
    fc.assert(
      fc.property(fc.oneof(anyString, fc.string({ unit: "binary", maxLength: 600 })), (text) => {
        const wellFormed = Buffer.from(text, "utf8").toString("utf8") === text
        // biome-ignore lint/suspicious/noControlCharactersInRegex: the pattern exists to find control characters
        const control = /[\u0000-\u001f\u007f-\u009f]/.test(text)
        const expected = text.length > 0 && text.length <= LeaseKey.maxLength && !control && wellFormed
        assert.strictEqual(isKey(text), expected, JSON.stringify(text))
      }),
      { numRuns: 2000 }
    )
  })

  it("a lone surrogate is an InvalidKey that says where and why", () => {
    for (const [key, unitName, index] of [
      ["\uD800", "D800", 0],
      ["\uDBFF", "DBFF", 0],
      ["ok\uDC00", "DC00", 2]
    ] as const) {
      const result = LeaseKey.decode(key)
      assert.isTrue(Result.isFailure(result))
      if (Result.isSuccess(result)) continue
      assert.strictEqual(result.failure.reason._tag, "InvalidKey")
      assert.include(
        result.failure.message,
        `not well-formed Unicode (a lone surrogate U+${unitName} at index ${index}`
      )
    }
    assert.isTrue(isKey("\uFFFD"), "U+FFFD itself is a character like any other")
    assert.isTrue(isKey("🔒"), "a surrogate pair is one well-formed character")
  })

  it("every Redis key of one lease is in one Cluster slot, for every key and prefix", () => {
    fc.assert(
      fc.property(prefix, anyKey, (prefix, key) => {
        const keys = LeaseStore.redisKeys(prefix, key)
        assert.strictEqual(keySlot(keys.lease), keySlot(keys.fence), JSON.stringify({ prefix, key }))
        // The tag Redis hashes is the key's own (escaped) text, never a part of it or the whole name.
        assert.strictEqual(LeaseStore.hashTag(key), `{${Buffer.from(hashedPart(utf8(keys.lease))).toString("utf8")}}`)
      }),
      { numRuns: 5000 }
    )
  })

  it("two different keys never share a Redis key (as bytes), and no lease key is another's fence", () => {
    fc.assert(
      fc.property(prefix, anyKey, anyKey, (prefix, a, b) => {
        fc.pre(a !== b)
        const names = (key: string) => {
          const keys = LeaseStore.redisKeys(prefix, key)
          return [keys.lease, keys.fence].map((name) => Buffer.from(utf8(name)).toString("hex"))
        }
        const [leaseA, fenceA] = names(a)
        const [leaseB, fenceB] = names(b)
        assert.notStrictEqual(leaseA, leaseB, JSON.stringify([a, b]))
        assert.notStrictEqual(fenceA, fenceB, JSON.stringify([a, b]))
        assert.notStrictEqual(leaseA, fenceB)
        assert.notStrictEqual(fenceA, leaseB)
      }),
      { numRuns: 5000 }
    )
    const lookAlikes = ["}", "%7D", "%257D", "%", "%25", "%%", "{}", "{%7D"]
    const leases = lookAlikes.map((key) => LeaseStore.redisKeys("lease:", key).lease)
    assert.strictEqual(new Set(leases).size, lookAlikes.length, leases.join(" "))
  })

  it("a key without % or } keeps its plain Redis name", () => {
    fc.assert(
      fc.property(
        prefix,
        anyKey.filter((key) => !/[%}]/.test(key)),
        (prefix, key) => {
          assert.deepStrictEqual(LeaseStore.redisKeys(prefix, key), {
            lease: `${prefix}{${key}}`,
            fence: `${prefix}{${key}}:fence`
          })
        }
      )
    )
    assert.deepStrictEqual(LeaseStore.redisKeys("lease:", "}abc"), {
      lease: "lease:{%7Dabc}",
      fence: "lease:{%7Dabc}:fence"
    })
  })
})
