// Command s3server serves gofakes3's S3 API over TLS, with its buckets as
// files in a folder. Tekton Results' S3 client (aws-sdk-go-v2) refuses to
// upload log parts over plain HTTP ("unseekable stream is not supported
// without TLS and trailing checksum"), and gofakes3's own command serves
// only plain HTTP. Over TLS that client sends parts aws-chunked with a
// trailing checksum, which gofakes3 v1.2.0 stores undecoded: decodeChunked
// decodes them first, as S3 does.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:19000", "address to serve on")
	dir := flag.String("dir", "", "folder of the buckets")
	bucket := flag.String("bucket", "", "bucket to create if it does not exist")
	cert := flag.String("tls-cert", "", "serving certificate (PEM)")
	key := flag.String("tls-key", "", "serving key (PEM)")
	flag.Parse()

	fs, err := s3afero.FsPath(*dir, s3afero.FsPathCreateAll)
	if err != nil {
		log.Fatalf("s3server: -dir: %v", err)
	}
	backend, err := s3afero.MultiBucket(fs)
	if err != nil {
		log.Fatalf("s3server: %v", err)
	}
	if *bucket != "" {
		if err := backend.CreateBucket(*bucket); err != nil && !gofakes3.IsAlreadyExists(err) {
			log.Fatalf("s3server: bucket %s: %v", *bucket, err)
		}
	}
	faker := gofakes3.New(backend, gofakes3.WithGlobalLog())
	srv := &http.Server{Addr: *addr, Handler: decodeChunked(faker.Server()), ReadHeaderTimeout: 10 * time.Second}
	log.Printf("s3server: serving %s on https://%s", *dir, *addr)
	log.Fatal(srv.ListenAndServeTLS(*cert, *key))
}

// decodeChunked turns an aws-chunked request body (X-Amz-Content-Sha256
// STREAMING-…: chunks "<hex size>[;chunk-signature=…]\r\n<data>\r\n",
// a last chunk of size 0, then trailing headers) into the plain payload.
func decodeChunked(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-") {
			next.ServeHTTP(w, r)
			return
		}
		payload, err := dechunk(bufio.NewReader(r.Body))
		if err != nil {
			http.Error(w, "aws-chunked body: "+err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(payload))
		r.ContentLength = int64(len(payload))
		r.Header.Set("Content-Length", strconv.Itoa(len(payload)))
		r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		for _, h := range []string{"X-Amz-Decoded-Content-Length", "X-Amz-Trailer", "Content-Encoding"} {
			r.Header.Del(h)
		}
		next.ServeHTTP(w, r)
	})
}

func dechunk(body *bufio.Reader) ([]byte, error) {
	var out bytes.Buffer
	for {
		line, err := body.ReadString('\n')
		if err != nil {
			return nil, err
		}
		sizeField, _, _ := strings.Cut(strings.TrimRight(line, "\r\n"), ";")
		size, err := strconv.ParseInt(sizeField, 16, 64)
		if err != nil {
			return nil, fmt.Errorf("chunk size %q: %w", sizeField, err)
		}
		if size == 0 {
			return out.Bytes(), nil // trailing headers follow
		}
		if _, err := io.CopyN(&out, body, size); err != nil {
			return nil, err
		}
		if _, err := body.Discard(2); err != nil { // \r\n
			return nil, err
		}
	}
}
