//! amqp tests.
