// Command coredns is CoreDNS with only the plugins that the one-node cluster's Corefile uses
// (scripts/k8s/manifests/coredns.yaml). CoreDNS' own main links every plugin, cloud SDKs included; this one
// builds in a fraction of the time. scripts/k8s/build.sh builds it in a module that requires
// github.com/coredns/coredns at the version named in scripts/k8s/lib.sh.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

// The order in which the plugins handle a query: the same relative order as in CoreDNS' list of all
// plugins (core/dnsserver/zdirectives.go).
func init() {
	dnsserver.Directives = []string{
		"reload", "ready", "health", "errors", "log", "loadbalance", "cache", "kubernetes", "loop",
	}
}

func main() {
	coremain.Run()
}
