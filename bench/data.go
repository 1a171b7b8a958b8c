package bench

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
)

// dataset is what every target is loaded with: the same users and posts,
// made from a fixed seed, and the members who own member_posts.
type dataset struct {
	users   []userData
	posts   []postData
	members []userData
}

// memberPassword is every member's password.
const memberPassword = "bench-member-password"

type userData struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// postData is a post; author is the index of a user in dataset.users.
type postData struct {
	Title     string
	Views     int
	Published bool
	Author    int
	Body      string
}

var words = strings.Fields(`amber basalt cedar delta ember fjord granite harbor island juniper
	kestrel lagoon meadow nebula orchard prairie quartz river summit tundra upland valley willow
	xenon yarrow zephyr quiet bright hollow distant gentle rapid silent golden crimson northern`)

// newDataset makes nUsers users, nPosts posts and nMembers members from
// seed. Views are uniform in [0, 1000) and half the posts are published,
// so the list scenario's filter (published, views >= 500) matches about a
// quarter. Members take nothing from the random numbers: the users and
// posts are the same whatever nMembers is.
func newDataset(nUsers, nPosts, nMembers int, seed uint64) *dataset {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	d := &dataset{users: make([]userData, nUsers), posts: make([]postData, nPosts), members: make([]userData, nMembers)}
	for i := range d.users {
		d.users[i] = userData{Name: fmt.Sprintf("User %d %s", i, pick(rng, 1)), Email: fmt.Sprintf("user%d@example.com", i)}
	}
	for i := range d.posts {
		d.posts[i] = postData{
			Title:     fmt.Sprintf("Post %d: %s", i, pick(rng, 4)),
			Views:     rng.IntN(1000),
			Published: rng.IntN(2) == 0,
			Author:    rng.IntN(nUsers),
			Body:      pick(rng, 30+rng.IntN(40)),
		}
	}
	for i := range d.members {
		d.members[i] = userData{Name: fmt.Sprintf("Member %d", i), Email: fmt.Sprintf("member%d@example.com", i)}
	}
	return d
}

// pick returns n random words.
func pick(rng *rand.Rand, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[rng.IntN(len(words))])
	}
	return b.String()
}

// userBodies are the JSON bodies that create the users.
func (d *dataset) userBodies() [][]byte {
	out := make([][]byte, len(d.users))
	for i, u := range d.users {
		out[i], _ = json.Marshal(u)
	}
	return out
}

// postBodies are the JSON bodies that create the posts, with the authors'
// ids on this target.
func (d *dataset) postBodies(userIDs []string) [][]byte {
	out := make([][]byte, len(d.posts))
	for i, p := range d.posts {
		out[i] = postJSON(p.Title, p.Views, p.Published, userIDs[p.Author], p.Body)
	}
	return out
}

// memberPostBodies are the JSON bodies that create member_posts: the posts
// again, post i written by member i mod len(memberIDs), so that each member
// owns the same share.
func (d *dataset) memberPostBodies(memberIDs []string) [][]byte {
	out := make([][]byte, len(d.posts))
	for i, p := range d.posts {
		out[i] = postJSON(p.Title, p.Views, p.Published, memberIDs[i%len(memberIDs)], p.Body)
	}
	return out
}

// ownerMatches is how many posts of member m match the list filter: what
// list-owner answers, up to 50.
func (d *dataset) ownerMatches(m int) int {
	n := 0
	for i := m; i < len(d.posts); i += len(d.members) {
		if d.posts[i].Published && d.posts[i].Views >= 500 {
			n++
		}
	}
	return n
}

// memberJSON is the body that registers member i; extra adds fields a
// target asks for besides email and password.
func (d *dataset) memberJSON(i int, extra map[string]any) []byte {
	m := map[string]any{"name": d.members[i].Name, "email": d.members[i].Email, "password": memberPassword}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

// postJSON is the body that creates a post, the same on every target.
func postJSON(title string, views int, published bool, author, body string) []byte {
	b, _ := json.Marshal(map[string]any{"title": title, "views": views, "published": published, "author": author, "body": body})
	return b
}
