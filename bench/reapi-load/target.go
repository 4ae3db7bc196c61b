// Parsing of grpc://HOST:PORT[/INSTANCE] and the one place where client
// connections are made, so that every server is dialled with the same options.
package main

import (
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// target is a server under test: its address and REAPI instance name.
type target struct {
	address  string
	instance string
}

func parseTarget(url string) (target, error) {
	rest, ok := strings.CutPrefix(url, "grpc://")
	if !ok {
		return target{}, fmt.Errorf("target %q: expected grpc://HOST:PORT[/INSTANCE]", url)
	}
	address, instance, _ := strings.Cut(rest, "/")
	if !strings.Contains(address, ":") {
		return target{}, fmt.Errorf("target %q: expected grpc://HOST:PORT[/INSTANCE]", url)
	}
	return target{address: address, instance: instance}, nil
}

// maximumMessageBytes bounds what the client sends and accepts in one message;
// larger than any request the workloads make.
const maximumMessageBytes = 64 << 20

// dial opens a new HTTP/2 connection (each call its own, so concurrent
// clients can be separate connections as separate Bazel processes would be).
func dial(t target) (*grpc.ClientConn, error) {
	return grpc.NewClient(
		"passthrough:///"+t.address,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(maximumMessageBytes),
			grpc.MaxCallSendMsgSize(maximumMessageBytes),
		),
	)
}
