// Command etcd is upstream etcd's server entry point, built inside this module so it shares
// the module graph (and the build cache) with the Kubernetes binaries.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
