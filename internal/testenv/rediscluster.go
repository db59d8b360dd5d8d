package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Cluster timings. nodeTimeout is short so that a failover takes a few
// seconds: a master is marked failing after it, and its replica elected
// within about one more.
const (
	clusterNodeTimeout = 1000 * time.Millisecond
	clusterSlots       = 16384
	nodeStartTimeout   = 10 * time.Second
	clusterFormTimeout = 60 * time.Second
	commandTimeout     = time.Second
	pollInterval       = 50 * time.Millisecond
)

// RedisCluster is a Redis Cluster of the test's own: redis-server
// processes on loopback ports, without persistence, killed when the test
// ends. The test may kill its masters to see a replica take over.
type RedisCluster struct {
	t       testing.TB
	nodes   []*clusterNode
	masters []*clusterNode // as formed, ordered by their first slot
	owner   [clusterSlots]int
}

// clusterNode is one redis-server process.
type clusterNode struct {
	dir    string
	addr   string
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has been reaped
	killed bool
}

// StartRedisCluster starts masters×(1+replicasPerMaster) redis-server processes,
// forms them into a cluster with redis-cli and waits until every node
// reports every slot served. Without redis-server and redis-cli the test
// skips loudly (fails under CI=true).
func StartRedisCluster(t testing.TB, masters, replicasPerMaster int) *RedisCluster {
	t.Helper()
	if masters < 3 || replicasPerMaster < 0 {
		t.Fatalf("testenv.StartRedisCluster(%d, %d): Redis Cluster needs at least 3 masters", masters, replicasPerMaster)
	}
	server := NeedCommand(t, "redis-server")
	cli := NeedCommand(t, "redis-cli")
	c := &RedisCluster{t: t, nodes: make([]*clusterNode, masters*(1+replicasPerMaster))}
	t.Cleanup(c.killAll)

	dir := t.TempDir()
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i := range c.nodes {
		wg.Go(func() {
			c.nodes[i], errs[i] = startClusterNode(server, filepath.Join(dir, fmt.Sprintf("node%d", i)))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.fail("starting cluster nodes: %v", err)
	}

	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.addr
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterFormTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, cli, clusterCreateArgs(addrs, replicasPerMaster)...).CombinedOutput()
	if err != nil {
		c.fail("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitOK(clusterFormTimeout)
	c.recordMasters(masters)
	return c
}

// clusterNodeConfig is the redis.conf of one node, started in its own
// directory (cd dir && redis-server redis.conf). The cluster bus gets a
// port of its own: the default, port+10000, may be out of range or taken.
// The surviving masters keep serving their slots while a failed one's
// are uncovered (cluster-require-full-coverage no), as a responder's
// cache should: with the default, every node refuses every command
// (CLUSTERDOWN) from the failure's detection until the promotion.
func clusterNodeConfig(port, busPort int) string {
	return fmt.Sprintf(`bind 127.0.0.1
port %d
cluster-port %d
protected-mode no
daemonize no
logfile redis.log
cluster-enabled yes
cluster-config-file nodes.conf
cluster-node-timeout %d
cluster-require-full-coverage no
appendonly no
save ""
repl-diskless-sync-delay 0
`, port, busPort, clusterNodeTimeout.Milliseconds())
}

// clusterCreateArgs are redis-cli's arguments to form a cluster of addrs,
// the first len(addrs)/(1+replicas) becoming masters.
func clusterCreateArgs(addrs []string, replicas int) []string {
	args := append([]string{"--cluster", "create"}, addrs...)
	return append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
}

// startClusterNode starts one node in dir and waits until it answers PING.
// Ports are picked free but may be taken before redis-server binds them,
// so a node that exits at startup is tried again on others.
func startClusterNode(bin, dir string) (*clusterNode, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var err error
	for range 3 {
		var ports []int
		if ports, err = freePorts(2); err != nil {
			return nil, err
		}
		cfg := clusterNodeConfig(ports[0], ports[1])
		if err = os.WriteFile(filepath.Join(dir, "redis.conf"), []byte(cfg), 0o644); err != nil {
			return nil, err
		}
		os.Remove(filepath.Join(dir, "nodes.conf")) // from a failed try
		n := &clusterNode{dir: dir, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])), exited: make(chan struct{})}
		n.cmd = exec.Command(bin, "redis.conf")
		n.cmd.Dir = dir
		if err = n.cmd.Start(); err != nil {
			return nil, fmt.Errorf("%s: %w", dir, err)
		}
		go func() { n.cmd.Wait(); close(n.exited) }()
		if err = n.waitPing(nodeStartTimeout); err == nil {
			return n, nil
		}
		n.kill()
		err = fmt.Errorf("node in %s on %s: %w\n%s", dir, n.addr, err, tail(filepath.Join(dir, "redis.log"), 20))
	}
	return nil, err
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (n *clusterNode) waitPing(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-n.exited:
			return fmt.Errorf("redis-server exited: %v", n.cmd.ProcessState)
		default:
		}
		reply, err := redisCommand(n.addr, "PING")
		if err == nil && reply == "PONG" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no PONG after %v (last: %q, %v)", timeout, reply, err)
		}
		time.Sleep(pollInterval)
	}
}

// kill sends SIGKILL to the node's process (by PID) and waits until it is
// reaped.
func (n *clusterNode) kill() {
	if n == nil || n.cmd == nil || n.cmd.Process == nil {
		return
	}
	n.killed = true
	n.cmd.Process.Kill()
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
	}
}

func (n *clusterNode) alive() bool {
	select {
	case <-n.exited:
		return false
	default:
		return !n.killed
	}
}

func (c *RedisCluster) killAll() {
	for _, n := range c.nodes {
		n.kill()
	}
}

// fail ends the test with msg and every node's recent log.
func (c *RedisCluster) fail(format string, args ...any) {
	c.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, format, args...)
	for i, n := range c.nodes {
		if n == nil {
			continue
		}
		state := "running"
		if !n.alive() {
			state = "killed or exited"
		}
		fmt.Fprintf(&b, "\n--- node %d, %s (%s), last lines of redis.log:\n%s", i, n.addr, state, tail(filepath.Join(n.dir, "redis.log"), 15))
	}
	c.t.Fatal(b.String())
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// URL names the cluster as ocspcache.NewRedisClient and
// redis.ParseClusterURL read it: redis://master1?addr=master2&addr=...
func (c *RedisCluster) URL() string {
	var b strings.Builder
	for i, m := range c.masters {
		if i == 0 {
			b.WriteString("redis://" + m.addr)
			continue
		}
		sep := "&"
		if i == 1 {
			sep = "?"
		}
		b.WriteString(sep + "addr=" + m.addr)
	}
	return b.String()
}

// Masters returns the masters' addresses as the cluster was formed (a
// killed one included), ordered by the first slot each served.
func (c *RedisCluster) Masters() []string {
	out := make([]string, len(c.masters))
	for i, m := range c.masters {
		out[i] = m.addr
	}
	return out
}

// MasterOf returns the index in Masters of the master that served slot
// when the cluster was formed.
func (c *RedisCluster) MasterOf(slot int) int { return c.owner[slot] }

// KillMaster kills Masters()[i] with SIGKILL, as a crash would.
func (c *RedisCluster) KillMaster(i int) {
	c.t.Helper()
	c.masters[i].kill()
}

// WaitOK waits until the cluster is whole again and returns how long it
// waited: every running node reports cluster_state:ok with every slot
// served, all of them agree which master serves each slot, and none of
// those masters has been killed (so after KillMaster it waits for the
// replica's promotion). It fails the test after timeout.
func (c *RedisCluster) WaitOK(timeout time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	for {
		err := c.checkOK()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			c.fail("cluster not ok after %v: %v", timeout, err)
		}
		time.Sleep(pollInterval)
	}
}

// checkOK reports why the cluster is not whole, or nil.
func (c *RedisCluster) checkOK() error {
	killed := map[string]bool{}
	var live []*clusterNode
	for _, n := range c.nodes {
		if n.alive() {
			live = append(live, n)
		} else {
			killed[n.addr] = true
		}
	}
	var first []string
	for _, n := range live {
		info, err := redisCommand(n.addr, "CLUSTER", "INFO")
		if err != nil {
			return fmt.Errorf("%s: CLUSTER INFO: %w", n.addr, err)
		}
		f := infoFields(info)
		if f["cluster_state"] != "ok" || f["cluster_slots_ok"] != strconv.Itoa(clusterSlots) {
			return fmt.Errorf("%s: cluster_state:%s cluster_slots_ok:%s", n.addr, f["cluster_state"], f["cluster_slots_ok"])
		}
		if f["cluster_known_nodes"] != strconv.Itoa(len(c.nodes)) {
			return fmt.Errorf("%s: knows %s nodes of %d", n.addr, f["cluster_known_nodes"], len(c.nodes))
		}
		nodes, err := redisCommand(n.addr, "CLUSTER", "NODES")
		if err != nil {
			return fmt.Errorf("%s: CLUSTER NODES: %w", n.addr, err)
		}
		owners, err := slotOwners(nodes)
		if err != nil {
			return fmt.Errorf("%s: %w", n.addr, err)
		}
		for slot, addr := range owners {
			if killed[addr] {
				return fmt.Errorf("%s: slot %d still served by killed %s", n.addr, slot, addr)
			}
		}
		if first == nil {
			first = owners
		} else if !slices.Equal(first, owners) {
			return fmt.Errorf("%s and %s disagree on the slots' masters", live[0].addr, n.addr)
		}
		repl, err := redisCommand(n.addr, "INFO", "replication")
		if err != nil {
			return fmt.Errorf("%s: INFO replication: %w", n.addr, err)
		}
		if r := infoFields(repl); r["role"] == "slave" && r["master_link_status"] != "up" {
			return fmt.Errorf("%s: replica of %s:%s, link %s", n.addr, r["master_host"], r["master_port"], r["master_link_status"])
		}
	}
	return nil
}

// recordMasters notes the masters as formed, ordered by first slot, and
// which serves each slot.
func (c *RedisCluster) recordMasters(want int) {
	c.t.Helper()
	nodes, err := redisCommand(c.nodes[0].addr, "CLUSTER", "NODES")
	if err != nil {
		c.fail("CLUSTER NODES: %v", err)
	}
	owners, err := slotOwners(nodes)
	if err != nil {
		c.fail("%v", err)
	}
	index := map[string]int{}
	for slot, addr := range owners {
		i, ok := index[addr]
		if !ok {
			n := slices.IndexFunc(c.nodes, func(n *clusterNode) bool { return n.addr == addr })
			if n < 0 {
				c.fail("slot %d is served by %s, not one of the cluster's nodes", slot, addr)
			}
			i = len(c.masters)
			index[addr] = i
			c.masters = append(c.masters, c.nodes[n])
		}
		c.owner[slot] = i
	}
	if len(c.masters) != want {
		c.fail("cluster formed with %d masters, want %d", len(c.masters), want)
	}
}

// WaitReplicated waits until every running replica has processed all
// that its master had received when WaitReplicated was called (so that a
// failover then loses nothing), failing the test after timeout.
func (c *RedisCluster) WaitReplicated(timeout time.Duration) {
	c.t.Helper()
	want := map[string]int64{} // master addr -> offset
	for _, n := range c.nodes {
		if !n.alive() {
			continue
		}
		r, err := redisCommand(n.addr, "INFO", "replication")
		if err != nil {
			c.fail("%s: INFO replication: %v", n.addr, err)
		}
		if f := infoFields(r); f["role"] == "master" {
			want[n.addr], _ = strconv.ParseInt(f["master_repl_offset"], 10, 64)
		}
	}
	deadline := time.Now().Add(timeout)
	for _, n := range c.nodes {
		for n.alive() {
			r, err := redisCommand(n.addr, "INFO", "replication")
			f := infoFields(r)
			if err == nil && f["role"] != "slave" {
				break
			}
			master := net.JoinHostPort(f["master_host"], f["master_port"])
			got, _ := strconv.ParseInt(f["slave_repl_offset"], 10, 64)
			if err == nil && got >= want[master] {
				break
			}
			if time.Now().After(deadline) {
				c.fail("replica %s of %s at offset %d, want %d after %v (%v)", n.addr, master, got, want[master], timeout, err)
			}
			time.Sleep(pollInterval)
		}
	}
}

// slotOwners reads CLUSTER NODES output: the address of the master
// serving each slot, "" for none.
func slotOwners(nodes string) ([]string, error) {
	owners := make([]string, clusterSlots)
	for line := range strings.Lines(nodes) {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		// <id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slot>...
		addr, _, _ := strings.Cut(f[1], "@")
		flags := strings.Split(f[2], ",")
		if !slices.Contains(flags, "master") || slices.Contains(flags, "fail") {
			continue
		}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") { // a slot being migrated
				continue
			}
			lo, hi, isRange := strings.Cut(r, "-")
			if !isRange {
				hi = lo
			}
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil || a > b || b >= clusterSlots {
				return nil, fmt.Errorf("CLUSTER NODES: bad slot range %q", r)
			}
			for s := a; s <= b; s++ {
				owners[s] = addr
			}
		}
	}
	if i := slices.Index(owners, ""); i >= 0 {
		return nil, fmt.Errorf("CLUSTER NODES: slot %d has no master", i)
	}
	return owners, nil
}

// infoFields reads "key:value" lines (CLUSTER INFO, INFO).
func infoFields(s string) map[string]string {
	m := map[string]string{}
	for line := range strings.Lines(s) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[k] = v
		}
	}
	return m
}

// redisCommand sends one command to addr on a connection of its own and
// returns the reply: a status, an integer or a bulk string, as text. An
// error reply is an error. It keeps this package free of a Redis client.
func redisCommand(addr string, args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, commandTimeout)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(commandTimeout))
	req := fmt.Appendf(nil, "*%d\r\n", len(args))
	for _, a := range args {
		req = fmt.Appendf(req, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write(req); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("reply %q", line)
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return "", err
		}
		return string(b[:n]), nil
	}
	return "", fmt.Errorf("unsupported reply %q", line)
}
