package rest

import (
	"net/http"

	"github.com/strata-dev/strata/internal/httpx"
	"github.com/strata-dev/strata/internal/schema"
)

// obj is a JSON object in the OpenAPI document.
type obj = map[string]any

func (a *API) openAPI(w http.ResponseWriter, r *http.Request) error {
	httpx.JSON(w, http.StatusOK, OpenAPI(a.recs.Collections()))
	return nil
}

// OpenAPI builds the OpenAPI document of the API for the collections. It is
// OpenAPI 3.0.3: client generators handle 3.0 well and 3.1 poorly.
func OpenAPI(cols []*schema.Collection) obj {
	schemas := obj{
		"Problem": obj{
			"type":     "object",
			"required": []string{"type", "title", "status"},
			"properties": obj{
				"type": obj{"type": "string"}, "title": obj{"type": "string"}, "status": obj{"type": "integer"},
				"detail": obj{"type": "string"}, "instance": obj{"type": "string"},
				"errors": obj{"type": "array", "items": obj{
					"type": "object", "required": []string{"field", "code", "message"},
					"properties": obj{"field": obj{"type": "string"}, "code": obj{"type": "string"}, "message": obj{"type": "string"}},
				}},
			},
		},
	}
	paths := obj{}
	for _, c := range cols {
		schemas[c.Name] = recordSchema(c, false)
		schemas[c.Name+"_input"] = recordSchema(c, true)
		schemas[c.Name+"_page"] = obj{
			"type": "object", "required": []string{"items", "next_cursor"},
			"properties": obj{
				"items":       obj{"type": "array", "items": ref(c.Name)},
				"next_cursor": obj{"type": "string", "nullable": true},
				"total":       obj{"type": "integer"},
			},
		}
		paths["/api/v1/collections/"+c.Name+"/records"] = obj{
			"get": op("list_"+c.Name, "List records of "+c.Name, listParameters(), nil, "200", c.Name+"_page"),
			"post": op("create_"+c.Name, "Create a record in "+c.Name,
				[]any{obj{"name": "Idempotency-Key", "in": "header", "schema": obj{"type": "string", "maxLength": 255}}},
				ref(c.Name+"_input"), "201", c.Name),
		}
		idParam := obj{"name": "id", "in": "path", "required": true, "schema": obj{"type": "string"}}
		ifMatch := obj{"name": "If-Match", "in": "header", "schema": obj{"type": "string"}}
		paths["/api/v1/collections/"+c.Name+"/records/{id}"] = obj{
			"get": op("get_"+c.Name, "View a record of "+c.Name, []any{idParam,
				obj{"name": "If-None-Match", "in": "header", "schema": obj{"type": "string"}},
				obj{"name": "fields", "in": "query", "schema": obj{"type": "string"}},
				obj{"name": "expand", "in": "query", "schema": obj{"type": "string"}},
			}, nil, "200", c.Name),
			"patch":  op("update_"+c.Name, "Update fields of a record of "+c.Name, []any{idParam, ifMatch}, ref(c.Name+"_input"), "200", c.Name),
			"put":    op("replace_"+c.Name, "Replace a record of "+c.Name, []any{idParam, ifMatch}, ref(c.Name+"_input"), "200", c.Name),
			"delete": op("delete_"+c.Name, "Delete a record of "+c.Name, []any{idParam, ifMatch}, nil, "204", ""),
		}
		if c.CachePolicy() == schema.CacheWriteBack {
			counters := obj{}
			for _, name := range c.Cache.Counters {
				counters[name] = obj{"type": "number"}
			}
			paths["/api/v1/collections/"+c.Name+"/records/{id}/increment"] = obj{
				"post": op("increment_"+c.Name, "Add to counters of a record of "+c.Name+" (written to the database in batches)",
					[]any{idParam}, obj{"type": "object", "properties": counters, "additionalProperties": false}, "200", c.Name),
			}
		}
	}
	return obj{
		"openapi": "3.0.3",
		"info": obj{
			"title":   "Strata API",
			"version": "1",
		},
		"components": obj{
			"schemas":   schemas,
			"responses": obj{"TooManyRequests": tooManyRequests()},
			"securitySchemes": obj{
				"bearer": obj{"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
			},
		},
		"security": []any{obj{"bearer": []string{}}},
		"paths":    paths,
	}
}

func ref(name string) obj { return obj{"$ref": "#/components/schemas/" + name} }

func op(id, summary string, params []any, body obj, status, result string) obj {
	o := obj{"operationId": id, "summary": summary}
	if params != nil {
		o["parameters"] = params
	}
	if body != nil {
		o["requestBody"] = obj{"required": true, "content": obj{"application/json": obj{"schema": body}}}
	}
	ok := obj{"description": "success"}
	if result != "" {
		ok["content"] = obj{"application/json": obj{"schema": ref(result)}}
	}
	problem := obj{"description": "problem", "content": obj{"application/problem+json": obj{"schema": ref("Problem")}}}
	o["responses"] = obj{status: ok, "429": obj{"$ref": "#/components/responses/TooManyRequests"}, "default": problem}
	return o
}

// tooManyRequests is the answer of a request over its rate limit, with
// the fields of draft-ietf-httpapi-ratelimit-headers.
func tooManyRequests() obj {
	header := func(typ, desc string) obj { return obj{"description": desc, "schema": obj{"type": typ}} }
	return obj{
		"description": "the caller's rate limit is spent; retry after Retry-After seconds",
		"headers": obj{
			"Retry-After":      header("integer", "seconds until the request would be allowed"),
			"RateLimit-Policy": header("string", `the limit, such as "user";q=1200;w=60: q requests per w seconds`),
			"RateLimit":        header("string", `the state, such as "user";r=0;t=10: r requests left, t seconds until the full quota is back`),
		},
		"content": obj{"application/problem+json": obj{"schema": ref("Problem")}},
	}
}

func listParameters() []any {
	q := func(name, typ string) obj { return obj{"name": name, "in": "query", "schema": obj{"type": typ}} }
	return []any{q("filter", "string"), q("sort", "string"), q("limit", "integer"), q("cursor", "string"),
		q("total", "boolean"), q("fields", "string"), q("expand", "string")}
}

// recordSchema is the JSON Schema of a collection's records, or of the body
// that creates or changes one.
func recordSchema(c *schema.Collection, input bool) obj {
	props := obj{}
	var required []string
	if !input {
		props["id"] = obj{"type": "string"}
		props["created"] = obj{"type": "string", "format": "date-time"}
		props["updated"] = obj{"type": "string", "format": "date-time"}
		props["expand"] = obj{"type": "object"}
		required = []string{"id", "created", "updated"}
	} else {
		props["id"] = obj{"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}
	}
	for _, f := range c.Fields {
		if f.Hidden || (input && f.Protected) {
			continue
		}
		props[f.Name] = fieldSchema(f)
	}
	s := obj{"type": "object", "properties": props}
	if c.HasFields() {
		s["additionalProperties"] = false
	}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

func fieldSchema(f *schema.Field) obj {
	var s obj
	switch f.Type {
	case schema.Number:
		s = obj{"type": "number", "format": "double"}
		if f.Min != nil {
			s["minimum"] = *f.Min
		}
		if f.Max != nil {
			s["maximum"] = *f.Max
		}
	case schema.Bool:
		s = obj{"type": "boolean"}
	case schema.DateTime:
		s = obj{"type": "string", "format": "date-time"}
	case schema.JSON:
		s = obj{}
	case schema.Select, schema.Relation:
		item := obj{"type": "string"}
		if f.Type == schema.Select {
			item["enum"] = f.Values
		}
		if f.Multiple {
			s = obj{"type": "array", "items": item}
		} else {
			s = item
			if f.Type == schema.Select {
				s["enum"] = append(append([]any{}, toAny(f.Values)...), nil)
			}
		}
	default:
		s = obj{"type": "string"}
		if f.Type == schema.Email {
			s["format"] = "email"
		}
		if f.Type == schema.URL {
			s["format"] = "uri"
		}
		if f.Min != nil {
			s["minLength"] = int(*f.Min)
		}
		if f.Max != nil {
			s["maxLength"] = int(*f.Max)
		}
		if f.Pattern != "" {
			s["pattern"] = f.Pattern
		}
	}
	if f.Type != schema.JSON {
		s["nullable"] = true
	}
	return s
}

func toAny(v []string) []any {
	out := make([]any, len(v))
	for i, s := range v {
		out[i] = s
	}
	return out
}
