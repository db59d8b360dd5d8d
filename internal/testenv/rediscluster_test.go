package testenv

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestClusterNodeConfig(t *testing.T) {
	cfg := clusterNodeConfig(30001, 40001)
	for _, want := range []string{
		"port 30001\n", "cluster-port 40001\n", "cluster-enabled yes\n", "appendonly no\n",
		"save \"\"\n", "cluster-node-timeout 1000\n", "cluster-require-full-coverage no\n", "bind 127.0.0.1\n",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
}

func TestClusterCreateArgs(t *testing.T) {
	got := clusterCreateArgs([]string{"a:1", "b:2", "c:3", "d:4"}, 1)
	want := []string{"--cluster", "create", "a:1", "b:2", "c:3", "d:4", "--cluster-replicas", "1", "--cluster-yes"}
	if !slices.Equal(got, want) {
		t.Errorf("clusterCreateArgs = %q, want %q", got, want)
	}
}

func TestSlotOwners(t *testing.T) {
	// CLUSTER NODES of a 3-master cluster whose first master failed over
	// (its replica, the last line, now serves 0-5460), a slot being
	// imported shown in brackets.
	const nodes = `07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003 master - 0 1426238318243 3 connected 10923-16383 [5000-<-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]
6ec23923021cf3ffec47632106199cb7f496ce01 127.0.0.1:30005@31005 master,fail - 0 1426238316232 5 disconnected
824fe116063bc5fcf9f4ffd895bc17aee7731ac3 127.0.0.1:30006@31006,host.example myself,master - 0 1426238317741 6 connected 0-5460
`
	owners, err := slotOwners(nodes)
	if err != nil {
		t.Fatal(err)
	}
	for slot, want := range map[int]string{0: "127.0.0.1:30006", 5460: "127.0.0.1:30006", 5461: "127.0.0.1:30002",
		10922: "127.0.0.1:30002", 10923: "127.0.0.1:30003", 16383: "127.0.0.1:30003"} {
		if owners[slot] != want {
			t.Errorf("slot %d: %q, want %q", slot, owners[slot], want)
		}
	}
	if _, err := slotOwners(strings.Replace(nodes, "0-5460", "1-5460", 1)); err == nil || !strings.Contains(err.Error(), "slot 0") {
		t.Errorf("uncovered slot 0: err = %v", err)
	}
}

func TestInfoFields(t *testing.T) {
	f := infoFields("# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nslave0:ip=127.0.0.1,port=1,state=online\r\n")
	if f["role"] != "slave" || f["master_host"] != "127.0.0.1" || f["slave0"] != "ip=127.0.0.1,port=1,state=online" {
		t.Errorf("infoFields = %q", f)
	}
}

// TestRedisCluster forms a cluster, writes through each master, kills one
// and waits for its replica to take over its slots.
func TestRedisCluster(t *testing.T) {
	c := StartRedisCluster(t, 3, 1)
	masters := c.Masters()
	if len(masters) != 3 {
		t.Fatalf("Masters() = %q", masters)
	}
	u, err := url.Parse(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	if got := append([]string{u.Host}, u.Query()["addr"]...); !slices.Equal(got, masters) {
		t.Errorf("URL() %s names %q, want the masters %q", c.URL(), got, masters)
	}

	if _, err := redisCommand(masters[0], "NOSUCHCOMMAND"); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("error reply: %v", err)
	}

	// One key per master, each SET on the master MasterOf names (a wrong
	// one would answer MOVED).
	keys := map[int]string{}
	for i := 0; len(keys) < 3; i++ {
		k := "k" + strconv.Itoa(i)
		slot, err := redisCommand(masters[0], "CLUSTER", "KEYSLOT", k)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := strconv.Atoi(slot)
		if _, ok := keys[c.MasterOf(s)]; !ok {
			keys[c.MasterOf(s)] = k
		}
	}
	for m, k := range keys {
		if _, err := redisCommand(masters[m], "SET", k, "v"+k); err != nil {
			t.Fatalf("SET %s on master %d: %v", k, m, err)
		}
	}
	c.WaitReplicated(10 * time.Second)

	c.KillMaster(0)
	took := c.WaitOK(30 * time.Second)
	t.Logf("replica took over after %v", took)
	nodes, err := redisCommand(masters[1], "CLUSTER", "NODES")
	if err != nil {
		t.Fatal(err)
	}
	owners, err := slotOwners(nodes)
	if err != nil {
		t.Fatal(err)
	}
	slot, _ := redisCommand(masters[1], "CLUSTER", "KEYSLOT", keys[0])
	s, _ := strconv.Atoi(slot)
	promoted := owners[s]
	if slices.Contains(masters, promoted) {
		t.Fatalf("slot %d served by %s after its master was killed", s, promoted)
	}
	if v, err := redisCommand(promoted, "GET", keys[0]); err != nil || v != "v"+keys[0] {
		t.Errorf("GET %s on the promoted replica = %q, %v", keys[0], v, err)
	}
	if _, err := redisCommand(promoted, "SET", keys[0], "new"); err != nil {
		t.Errorf("SET on the promoted replica: %v", err)
	}
	if _, err := redisCommand(masters[0], "PING"); err == nil {
		t.Error("killed master still answers")
	}
}
