// Command gcnode is one node of a Go groupcache cluster, built on the real
// github.com/golang/groupcache library, for the interoperability tests of
// geecache-transport-http (tests/integration/interop.rs).
//
// It serves groupcache's peer protocol under /_groupcache/ and, on the same
// listener, a small control API the test drives:
//
//	GET  /control/ready            200 "ok"
//	POST /control/peers            body: peer base URLs, one per line; calls pool.Set
//	GET  /control/get?key=K        group.Get(K): 200 raw value, or 500 with the error
//	GET  /control/loads            one line per loaded key: "<count> <hex(key)>"
//	GET  /control/stats            one line per counter: "<name> <value>"
//
// It listens first (port 0 is fine), then prints "listening on <addr>" on
// stdout, so the caller learns the port and knows connections are accepted.
// The self URL is "http://<addr>" unless -self says otherwise.
//
// The loader answers "value-of-" + key for every key, the same function the
// Rust nodes of the test use, so any answer can be checked whoever loaded it;
// it counts its calls per key, which is how the test learns who owns a key.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/golang/groupcache"
)

const basePath = "/_groupcache/"

// loads counts loader calls per key.
type loads struct {
	mu     sync.Mutex
	counts map[string]int
}

func (l *loads) add(key string) {
	l.mu.Lock()
	l.counts[key]++
	l.mu.Unlock()
}

// lines writes "<count> <hex(key)>" per key, sorted; hex because keys may hold
// any byte, newlines and spaces included.
func (l *loads) lines() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	keys := make([]string, 0, len(l.counts))
	for k := range l.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%d %x\n", l.counts[k], k)
	}
	return b.String()
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	self := flag.String("self", "", `this node's base URL (default "http://" + the listening address)`)
	peers := flag.String("peers", "", "comma-separated peer base URLs (may also be set later with POST /control/peers)")
	groupName := flag.String("group", "interop", "group name")
	cacheBytes := flag.Int64("cache-bytes", 64<<20, "group cache budget in bytes")
	peerTimeout := flag.Duration("peer-timeout", 5*time.Second, "bound on one request to a peer")
	watchStdin := flag.Bool("exit-on-stdin-eof", false, "exit when stdin closes (the parent died)")
	flag.Parse()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("gcnode: listen %s: %v", *listen, err)
	}
	if *self == "" {
		*self = "http://" + ln.Addr().String()
	}

	pool := groupcache.NewHTTPPoolOpts(*self, &groupcache.HTTPPoolOptions{BasePath: basePath})
	// groupcache's client has no timeout of its own; bound every peer request.
	transport := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: *peerTimeout}).DialContext,
		ResponseHeaderTimeout: *peerTimeout,
	}
	pool.Transport = func(context.Context) http.RoundTripper { return transport }
	if *peers != "" {
		pool.Set(strings.Split(*peers, ",")...)
	}

	counted := &loads{counts: make(map[string]int)}
	group := groupcache.NewGroup(*groupName, *cacheBytes, groupcache.GetterFunc(
		func(_ context.Context, key string, dest groupcache.Sink) error {
			counted.add(key)
			return dest.SetString("value-of-" + key)
		}))

	control := http.NewServeMux()
	control.HandleFunc("/control/ready", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok")
	})
	control.HandleFunc("/control/peers", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST a list of peer URLs, one per line", http.StatusMethodNotAllowed)
			return
		}
		body, err := ioutil.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var list []string
		for _, line := range strings.Split(string(body), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				list = append(list, line)
			}
		}
		pool.Set(list...)
		fmt.Fprintf(w, "%d peers\n", len(list))
	})
	control.HandleFunc("/control/get", func(w http.ResponseWriter, r *http.Request) {
		key := r.URL.Query().Get("key")
		ctx, cancel := context.WithTimeout(r.Context(), 2**peerTimeout)
		defer cancel()
		var value []byte
		if err := group.Get(ctx, key, groupcache.AllocatingByteSliceSink(&value)); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(value)
	})
	control.HandleFunc("/control/loads", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, counted.lines())
	})
	control.HandleFunc("/control/stats", func(w http.ResponseWriter, _ *http.Request) {
		s := &group.Stats
		fmt.Fprintf(w, "gets %d\ncache_hits %d\npeer_loads %d\npeer_errors %d\nloads %d\n"+
			"loads_deduped %d\nlocal_loads %d\nlocal_load_errors %d\nserver_requests %d\n",
			s.Gets.Get(), s.CacheHits.Get(), s.PeerLoads.Get(), s.PeerErrors.Get(), s.Loads.Get(),
			s.LoadsDeduped.Get(), s.LocalLoads.Get(), s.LocalLoadErrs.Get(), s.ServerRequests.Get())
	})

	// Dispatch on the prefix ourselves instead of through a ServeMux: a ServeMux cleans
	// the (already unescaped) path and redirects, so keys such as "//x" or "../y" would
	// never reach groupcache's handler.
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, basePath) {
			pool.ServeHTTP(w, r)
			return
		}
		control.ServeHTTP(w, r)
	})

	if *watchStdin {
		go func() {
			io.Copy(ioutil.Discard, os.Stdin)
			os.Exit(0)
		}()
	}

	fmt.Printf("listening on %s\n", ln.Addr())
	os.Stdout.Sync()
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}
