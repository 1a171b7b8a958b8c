package store

import "regexp"

var createTableRE = regexp.MustCompile(`^CREATE TABLE IF NOT EXISTS ([A-Za-z0-9_]+) `)

// SystemTables returns the names of the tables Open creates, such as
// _collections and _migrations: a database holding any of them is in use
// by Strata.
func SystemTables() []string {
	var names []string
	for _, stmt := range systemTables {
		if m := createTableRE.FindStringSubmatch(stmt); m != nil {
			names = append(names, m[1])
		}
	}
	return names
}
