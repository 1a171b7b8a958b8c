// Command pocketbase is the standard PocketBase main, built from its Go
// module so that the benchmark runs the same release on every machine.
package main

import (
	"log"

	"github.com/pocketbase/pocketbase"
)

func main() {
	app := pocketbase.New()
	if err := app.Start(); err != nil {
		log.Fatal(err)
	}
}
