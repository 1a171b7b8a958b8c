package telemetry

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
)

// NodeID names this process among the nodes of a cluster: the host name
// and a random suffix, fixed for the life of the process.
var NodeID = sync.OnceValue(func() string {
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:])
	if host == "" {
		host = "node"
	}
	return host + "-" + hex.EncodeToString(b[:])
})
