// Package interop holds warren's interop tests for the Go client amqp091-go
// (github.com/rabbitmq/amqp091-go). The tests are in the *_test.go files; run them with
// run.sh, which builds against Debian's golang-github-rabbitmq-amqp091-go-dev without
// network access, against the broker named by AMQP_URL.
package interop
