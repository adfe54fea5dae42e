package main

import (
	"fmt"
	"runtime"
)

func runVersion(a *app, args []string) int {
	if _, code, ok := a.parse(args); !ok {
		return code
	}
	if a.jsonOut {
		a.printJSON(map[string]string{"version": version, "go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH})
		return exitOK
	}
	fmt.Fprintf(a.stdout, "snapferry %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}
