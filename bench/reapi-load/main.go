// Command reapi-load is the side-by-side benchmark's REAPI client and its null
// sink. It is written in Go because on a two-core machine the client competes
// with the server under test for CPU: a compiled client with generated protobuf
// code spends far less of it per request than a Node or Python one, and the
// null sink shows how much that is (the client's ceiling).
//
//	reapi-load capabilities --target grpc://HOST:PORT[/INSTANCE]
//	reapi-load measure --target URL --figure NAME [flags]   (one JSON line on stdout)
//	reapi-load fill --target URL --bytes N [--concurrency C]  (fresh 4 KiB blobs)
//	reapi-load sink [--listen HOST:PORT]                     (prints "serving on HOST:PORT")
//
// bench/sideBySide.ts builds it with `go build` at bench time and drives it.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: reapi-load capabilities|measure|fill|sink [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "capabilities":
		err = runCapabilities(os.Args[2:])
	case "measure":
		err = runMeasure(os.Args[2:])
	case "fill":
		err = runFill(os.Args[2:])
	case "sink":
		err = runSink(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (capabilities, measure, fill or sink)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "reapi-load:", err)
		os.Exit(1)
	}
}
