// A stand-in for the kubernetes-csi livenessprobe sidecar v2.19.0, used only by the benchmark when the
// Go module proxy does not serve the sidecar itself. Written for this project (no sidecar code is
// copied). What v2.19.0's cmd/livenessprobe does, and so this program does:
//   - at start: one connection with no timeout (WithTimeout(0): wait for the driver however long),
//     GetPluginInfo for the driver name (the metrics label), connection closed;
//   - per /healthz request: a context with --probe-timeout on the request's context, a *fresh*
//     csi-lib-utils connection (connection.Connect with the metrics manager, WithTimeout(probe
//     timeout)), rpc.Probe on it, the connection closed; 500 with the error text when either fails,
//     500 "driver responded but is not ready" for ready=false, else 200 "ok";
//   - /metrics from the csi-lib-utils metrics manager on the same mux (--http-endpoint).
//
// Differences that do not touch the per-request path: csi-lib-utils v0.25.0 here (v2.19.0 pins
// v0.24.0), and no klog (the sidecar logs per request only at -v=5, or on failure).
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	connlib "github.com/kubernetes-csi/csi-lib-utils/connection"
	"github.com/kubernetes-csi/csi-lib-utils/metrics"
	"github.com/kubernetes-csi/csi-lib-utils/rpc"
)

func main() {
	csiAddress := flag.String("csi-address", "/run/csi/socket", "CSI driver socket")
	httpEndpoint := flag.String("http-endpoint", "127.0.0.1:9808", "listen address of /healthz and /metrics")
	probeTimeout := flag.Duration("probe-timeout", time.Second, "deadline of one Probe call")
	flag.Parse()

	mm := metrics.NewCSIMetricsManager("")
	conn, err := connlib.Connect(context.Background(), *csiAddress, mm, connlib.WithTimeout(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "connect:", err)
		os.Exit(1)
	}
	name, err := rpc.GetDriverName(context.Background(), conn)
	conn.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "GetPluginInfo:", err)
		os.Exit(1)
	}
	mm.SetDriverName(name)

	mux := http.NewServeMux()
	mm.RegisterToServer(mux, "/metrics")
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, req *http.Request) {
		ctx, cancel := context.WithTimeout(req.Context(), *probeTimeout)
		defer cancel()
		c, err := connlib.Connect(ctx, *csiAddress, mm, connlib.WithTimeout(*probeTimeout))
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(err.Error()))
			return
		}
		defer c.Close()
		ready, err := rpc.Probe(ctx, c)
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(err.Error()))
			return
		}
		if !ready {
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte("driver responded but is not ready"))
			return
		}
		w.Write([]byte("ok"))
	})
	if err := http.ListenAndServe(*httpEndpoint, mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
