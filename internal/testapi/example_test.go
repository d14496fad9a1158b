package testapi_test

import (
	"fmt"
	"time"

	"github.com/smartratelimit/smartratelimit/internal/testapi"
)

func ExampleNewServer() {
	srv, err := testapi.NewServer(testapi.Config{Limit: 2, Window: time.Hour, Style: testapi.StyleIETF})
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	for range 3 {
		resp, err := srv.Client().Get(srv.URL + "/items")
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode, resp.Header.Get("RateLimit-Policy"))
	}
	st := srv.Stats()
	fmt.Println("ok:", st.OK, "throttled:", st.Throttled)
	// Output:
	// 200 "default";q=2;w=3600
	// 200 "default";q=2;w=3600
	// 429 "default";q=2;w=3600
	// ok: 2 throttled: 1
}
