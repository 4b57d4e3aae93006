package launch

import (
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

func TestFreePort(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("port %d is not free: %v", port, err)
	}
	_ = l.Close()
}

func TestKeyValueServer(t *testing.T) {
	for _, store := range []string{"redis", "valkey"} {
		path, err := KeyValueBinary(store)
		if err != nil {
			t.Fatalf("%s: %v", store, err)
		}
		if base := filepath.Base(path); base != "redis-server" && base != "valkey-server" {
			t.Fatalf("%s stands in as %s", store, path)
		}
	}
	args := KeyValueArgs(7001, "/data", "pw", []User{{Name: "reader", Password: "rpw", Rules: []string{"-@all", "+get"}}})
	for _, pair := range [][2]string{{"--bind", "127.0.0.1"}, {"--port", "7001"}, {"--requirepass", "pw"}, {"--appendfsync", "always"}, {"--logfile", "/data/server.log"}} {
		if i := slices.Index(args, pair[0]); i < 0 || args[i+1] != pair[1] {
			t.Errorf("no %s %s in %v", pair[0], pair[1], args)
		}
	}
	if i := slices.Index(args, "--user"); i < 0 || !slices.Equal(args[i:], []string{"--user", "reader", "on", ">rpw", "-@all", "+get"}) {
		t.Errorf("the user reader is not defined last in %v", args)
	}
}
