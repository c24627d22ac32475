package lab

import (
	"fmt"
	"net"
	"testing"
)

// Two runs at once hold two node subnets, so their nodes never share an
// address (a refusing node has no listener to keep its port); a subnet is
// free again once its run closes.
func TestRunsHoldTheirOwnNodeSubnet(t *testing.T) {
	a, b := &labNodes{}, &labNodes{}
	if err := a.takeSubnet(); err != nil {
		t.Fatal(err)
	}
	if err := b.takeSubnet(); err != nil {
		t.Fatal(err)
	}
	if a.subnet == b.subnet || a.nodeAddr(1) == b.nodeAddr(1) {
		t.Fatalf("both runs got subnet %d: %s, %s", a.subnet, a.nodeAddr(1), b.nodeAddr(1))
	}
	// Another process's run cannot take a held subnet either: its lock
	// listener would not bind.
	if l, err := net.Listen("tcp", fmt.Sprintf("127.0.%d.254:%d", a.subnet, subnetLockPort)); err == nil {
		l.Close()
		t.Fatalf("subnet %d's lock could be taken while held", a.subnet)
	}
	held := a.subnet
	if err := a.close(); err != nil {
		t.Fatal(err)
	}
	c := &labNodes{}
	if err := c.takeSubnet(); err != nil {
		t.Fatal(err)
	}
	defer c.close()
	defer b.close()
	if c.subnet > held {
		t.Errorf("subnet %d not taken again after its run closed (got %d)", held, c.subnet)
	}
}
