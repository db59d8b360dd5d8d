package ocspcache

// Partitioned is a cache whose keys live on servers that fail separately,
// such as the masters of a Redis Cluster: a reader may then keep off the
// part that fails and go on using the others. Partition(key) is in
// [0, Partitions()).
type Partitioned interface {
	Partitions() int
	Partition(key string) int
}

// clusterSlots is the number of Redis Cluster hash slots.
const clusterSlots = 16384

// Partitions implements Partitioned: the hash slots of a Redis Cluster, or
// one part for a single server (or a Ring, whose placement is the
// client's own).
func (r *Redis) Partitions() int {
	if r.cluster {
		return clusterSlots
	}
	return 1
}

// Partition implements Partitioned: the Redis Cluster hash slot of key's
// response (CRC16 of the full key modulo 16384, Redis Cluster
// specification §"Keys distribution model"; the prefix holds no hash tag,
// RedisConfig.Validate makes sure), or 0.
func (r *Redis) Partition(key string) int {
	if !r.cluster {
		return 0
	}
	c := crc16(0, r.cfg.Prefix)
	c = crc16(c, "r:")
	c = crc16(c, key)
	return int(c % clusterSlots)
}

// crc16 continues the CRC-16/XMODEM (polynomial 0x1021, initial value 0)
// that Redis Cluster hashes keys with, over s. The client library has one
// but keeps it internal.
func crc16(crc uint16, s string) uint16 {
	for i := 0; i < len(s); i++ {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^s[i]]
	}
	return crc
}

var crc16Table = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()
