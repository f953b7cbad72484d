// dockerfile-lint runs BuildKit's own Dockerfile checks (the rules behind `docker build --check`,
// github.com/moby/buildkit/frontend/dockerfile/linter) without a container engine or a network:
// every base image "resolves" to a minimal linux image config instead of being pulled.
//
//	dockerfile-lint Dockerfile...
//
// Prints one line per finding (file:line: Rule: detail) and exits 1 when there is any finding or a
// Dockerfile does not parse, 0 when all are clean. `# check=` directives in the file apply exactly
// as in BuildKit (e.g. `# check=error=true;experimental=all`).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/subrequests/lint"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// offlineResolver answers every base image with a minimal linux config (PATH set, as real bases
// have), so the linter runs the same rules as a build would without pulling anything.
type offlineResolver struct{}

func (offlineResolver) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	img := ocispecs.Image{
		Platform: ocispecs.Platform{OS: "linux", Architecture: runtime.GOARCH},
		Config:   ocispecs.ImageConfig{Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
	}
	dt, err := json.Marshal(img)
	if err != nil {
		return "", "", nil, err
	}
	return ref, digest.FromBytes(dt), dt, nil
}

// lintFile returns the number of findings in one Dockerfile (a parse/build error counts as one).
func lintFile(path string) (int, error) {
	dt, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// The source map names the file in findings; like the frontend, it points at a local source.
	ctx := context.Background()
	src := llb.Local("dockerfile")
	def, err := src.Marshal(ctx)
	if err != nil {
		return 0, err
	}
	smap := llb.NewSourceMap(&src, path, "Dockerfile", dt)
	smap.Definition = def
	results, err := dockerfile2llb.DockerfileLint(ctx, dt, dockerfile2llb.ConvertOpt{
		MetaResolver: offlineResolver{},
		SourceMap:    smap,
	})
	if err != nil {
		return 0, err
	}
	return report(path, results), nil
}

func report(path string, results *lint.LintResults) int {
	n := 0
	for _, w := range results.Warnings {
		n++
		at := 0
		if w.Location != nil && len(w.Location.Ranges) > 0 {
			at = int(w.Location.Ranges[0].Start.Line)
		}
		fmt.Printf("%s:%d: %s: %s (%s)\n", path, at, w.RuleName, w.Detail, w.URL)
	}
	if results.Error != nil {
		n++
		at := 0
		if len(results.Error.Location.Ranges) > 0 {
			at = int(results.Error.Location.Ranges[0].Start.Line)
		}
		fmt.Printf("%s:%d: error: %s\n", path, at, results.Error.Message)
	}
	return n
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dockerfile-lint Dockerfile...")
		os.Exit(2)
	}
	total := 0
	for _, path := range os.Args[1:] {
		n, err := lintFile(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			os.Exit(2)
		}
		total += n
	}
	if total > 0 {
		os.Exit(1)
	}
	fmt.Printf("%d Dockerfile(s) clean\n", len(os.Args)-1)
}
