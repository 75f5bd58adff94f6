/**
 * Redis Cluster key slots, computed as Redis computes them (`keyHashSlot` in cluster.c): CRC16/XMODEM of the bytes
 * between the first `{` and the next `}` (the whole key when that part is empty or missing), modulo 16384.
 */

/** The CRC16/XMODEM table (polynomial 0x1021), built once. */
const table = (() => {
  const t = new Uint16Array(256)
  for (let i = 0; i < 256; i++) {
    let crc = i << 8
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
    t[i] = crc
  }
  return t
})()

const encoder = new TextEncoder()

/** CRC16/XMODEM of `bytes[from, to)`. */
const crc16 = (bytes: Uint8Array, from: number, to: number): number => {
  let crc = 0
  for (let i = from; i < to; i++) crc = ((crc << 8) & 0xffff) ^ table[((crc >> 8) ^ bytes[i]!) & 0xff]!
  return crc
}

/** The number of slots of a Redis Cluster. */
export const slotCount = 16384

/** The Cluster slot of a Redis key, as `CLUSTER KEYSLOT` answers it. */
export const keySlot = (redisKey: string): number => {
  const bytes = encoder.encode(redisKey)
  const open = bytes.indexOf(0x7b)
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1)
    if (close !== -1 && close !== open + 1) return crc16(bytes, open + 1, close) & (slotCount - 1)
  }
  return crc16(bytes, 0, bytes.length) & (slotCount - 1)
}
