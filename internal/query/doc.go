// Package query is the filter and sort language of the REST API:
//
//	filter=title ~ 'go' && (views >= 10 || author.name = "Ann")
//	sort=-created,title
//
// A filter is parsed once into a typed syntax tree (Parse), checked against
// a collection's schema and compiled to parameterized SQL for SQLite or
// PostgreSQL (Env.Where). Table and column names in the SQL come only from
// the schema and every value from the filter is a bind parameter; the one
// exception is the segments of JSON paths, which are inlined as string
// literals after a check that they are letters, digits and _ only. Sorts
// compile to ORDER BY keys (Env.Order) that also drive keyset pagination
// (Env.After).
//
// # Paths
//
// A path names a field ("title"), the system fields id, created and
// updated, a field of a related record through a relation field
// ("author.name", at most 3 relations deep), a value inside a json field
// ("meta.a.b"), or, in a document collection, any value of the document
// ("a.b.c"). A segment of digits indexes an array ("meta.list.0"); on
// PostgreSQL it also names an object key of digits, on SQLite it does not.
//
// # Semantics
//
// A comparison of a path that has no value (SQL NULL, a missing JSON key, a
// relation that points nowhere) is false, except x = null. The negated
// operators !=, !~ and not in are the exact complements of =, ~ and in, and
// !(e) is the exact complement of e: title != 'a' selects the records whose
// title is null too, and author.name != 'Ann' those without an author. x =
// null is the complement of x != null, which holds when the path reaches a
// value: for a list, a non-empty one; for a JSON path, one that is not JSON
// null; through a relation, a related record whose field has a value.
//
// ~ is a case-insensitive substring test on text (SQLite folds ASCII
// letters only; PostgreSQL's ILIKE folds all). On a list field it tests
// whether the list holds the value; on a JSON value, whether it is an array
// that holds the value or a string that contains it. in (...) on a list
// tests whether the list holds any of the values. On a relation path, a
// comparison holds when some related record satisfies it.
//
// A JSON value equals or orders against a literal of its own JSON type
// only: meta.n > 5 is false where n is a string. Datetimes are compared
// with a string literal that schema.ParseTime accepts. Select values are
// not checked against the field's allowed values, so that records holding a
// value since removed from the schema can still be found.
//
// # Order and pages
//
// Ascending keys put NULLs first and descending keys put them last on both
// engines. The id ends every order as a tiebreaker, so that the order is
// total; After then selects the rows past a given row by its key values
// (the seek method), which stays correct while rows come and go.
package query
