// Command rollsafe is the CLI. Installed as kubectl-rollsafe it also works as
// a kubectl plugin ("kubectl rollsafe ...").
package main

import (
	"os"

	"github.com/rollsafe/rollsafe/internal/cmd/root"
)

func main() { os.Exit(root.Main()) }
