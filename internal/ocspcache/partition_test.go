package ocspcache

import "testing"

// TestCRC16: the check value of CRC-16/XMODEM, and the Redis Cluster
// specification's example (slot of "123456789" is 0x31C3 % 16384 = 12739),
// computed in pieces as Partition does.
func TestCRC16(t *testing.T) {
	if got := crc16(0, "123456789"); got != 0x31c3 {
		t.Errorf("crc16(123456789) = %#x, want 0x31c3", got)
	}
	if got := crc16(crc16(0, "1234"), "56789"); got != 0x31c3 {
		t.Errorf("crc16 in two pieces = %#x, want 0x31c3", got)
	}
	r := &Redis{cluster: true, cfg: RedisConfig{Prefix: "12"}}
	if got := r.Partition("3456789"[2:]); got != int(crc16(0, "12r:56789")%clusterSlots) {
		t.Errorf("Partition = %d", got)
	}
	if single := (&Redis{}); single.Partitions() != 1 || single.Partition("x") != 0 {
		t.Errorf("a single server: %d partitions, key in %d", single.Partitions(), single.Partition("x"))
	}
}
