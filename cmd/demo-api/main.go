// Command demo-api is the seeds' Go service (jiameng-api), used by the lab
// and the deploy kit. See internal/demoapi.
package main

import (
	"os"

	"github.com/rollsafe/rollsafe/internal/demoapi"
)

func main() { os.Exit(demoapi.Main(os.Args[1:], os.Stdout, os.Stderr)) }
