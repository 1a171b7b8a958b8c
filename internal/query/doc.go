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
// operators !=, !~ and not in are the exact complements of =, ~ and in (but
// for != with a null variable, see Rules), and !(e) is the exact
// complement of e: title != 'a' selects the records whose
// title is null too, and author.name != 'Ann' those without an author. x =
// null is the complement of x != null, which holds when the path reaches a
// value: for a list, a non-empty one; for a JSON path, one that is not JSON
// null; through a relation, a related record whose field has a value.
//
// ~ is a case-insensitive substring test on text (SQLite folds ASCII
// letters only; PostgreSQL's ILIKE folds as the database's locale does,
// ASCII letters only under the C locale). On a list field it tests
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
// # Rules
//
// A collection's access rules are written in the same language, with
// variables that Env.Request gives values to:
//
//	@request.auth.id          the caller's record id          (text)
//	@request.auth.collection  the caller's auth collection    (text)
//	@request.auth.<field>     a field of the caller's record  (its type)
//	@request.body.<field>     a field's value in the body     (its type)
//	@request.query.<name>     a query parameter               (text)
//	@request.method           GET, POST, PATCH, PUT or DELETE (text)
//	@now                      the time of the request         (datetime)
//
// as in owner = @request.auth.id, or @request.auth.role = 'admin' ||
// members ~ @request.auth.id. Body fields are typed by the collection's
// schema (in a document collection, any key, as json), the caller's
// fields by Request.AuthSchema.
//
// A variable compares with a path, a literal or another variable of its
// type as a field of its type would: a text variable with text, email,
// url, select and relation fields and ids, a datetime with datetimes. A
// text, number or bool variable also compares with a JSON value (a path
// into a json field or a document) as a literal does. A variable holding
// a list (a multiple select or relation) or json compares with literals
// and other variables only, and on the right of a comparison a variable
// holds text, a number, a bool or a datetime. Variables are never written
// into the SQL: a comparison with a path binds the variable's value as a
// parameter, and one of variables and literals, which the request
// decides, compiles to TRUE or FALSE.
//
// A variable without a value is null: any field of an anonymous caller, a
// field the body leaves out, a missing query parameter, an empty list.
// Against a literal, a null variable is a null field: @v = null holds and
// @v != 'a' holds. Against a path or another variable, with @v null:
//
//	x = @v, x ~ @v, x > @v ...  false, even where x is null
//	x != @v                     x != null: true where x has a value
//	x !~ @v                     true, the complement of x ~ @v
//
// Only the literal null tests for null, so that owner = @request.auth.id is
// false for an anonymous caller even on records without an owner. So !=
// tests that two sides differ, as SQL's IS DISTINCT FROM does: it is the
// complement of = except when both sides are null, where both are false.
//
// Env.Check and CheckRule type-check a rule without a request, when it is
// saved; Env.Eval evaluates a filter or a rule on one record in memory,
// with the answer Where gives in the database.
//
// # Order and pages
//
// Ascending keys put NULLs first and descending keys put them last on both
// engines. The id ends every order as a tiebreaker, so that the order is
// total; After then selects the rows past a given row by its key values
// (the seek method), which stays correct while rows come and go.
package query
