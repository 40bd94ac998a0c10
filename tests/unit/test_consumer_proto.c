/* test_consumer_proto.c — Kafka's ConsumerProtocol codec (proto/): the
 * exact v0 bytes the encoders write, Subscriptions and Assignments of
 * versions 1..3 as Kafka clients send them (fields after the topics are
 * ignored), and malformed input refused at every cut. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "consumer_proto.h"
#include "errors.h"
#include "kafka.h"

static void test_v0_bytes(void)
{
    const char *t[] = {"ab", "c"};
    size_t len;
    uint8_t *b = grp_subscription_encode(t, 2, &len);
    static const uint8_t sub[] = {
        0,    0,                /* version 0 */
        0,    0,    0,    2,    /* 2 topics */
        0,    2,    'a',  'b',  /* "ab" */
        0,    1,    'c',        /* "c" */
        0xff, 0xff, 0xff, 0xff, /* user_data: null */
    };
    CHECK_FATAL(b != NULL);
    CHECK_EQ_INT(len, sizeof sub);
    CHECK(memcmp(b, sub, sizeof sub) == 0);
    free(b);

    b = grp_subscription_encode(NULL, 0, &len);
    static const uint8_t none[] = {
        0,    0,                /* version 0 */
        0,    0,    0,    0,    /* no topics */
        0xff, 0xff, 0xff, 0xff, /* user_data: null */
    };
    CHECK_FATAL(b != NULL);
    CHECK(len == sizeof none && memcmp(b, none, sizeof none) == 0);
    free(b);

    int32_t parts[] = {5, 1};
    grp_tp_t tp = {"t", parts, 2};
    grp_assign_t a = {&tp, 1};
    b = grp_assignment_encode(&a, &len);
    static const uint8_t asg[] = {
        0,    0,                /* version 0 */
        0,    0,    0,    1,    /* 1 topic */
        0,    1,    't',        /* "t" */
        0,    0,    0,    2,    /* 2 partitions */
        0,    0,    0,    5,    /* 5 */
        0,    0,    0,    1,    /* 1 */
        0xff, 0xff, 0xff, 0xff, /* user_data: null */
    };
    CHECK_FATAL(b != NULL);
    CHECK_EQ_INT(len, sizeof asg);
    CHECK(memcmp(b, asg, sizeof asg) == 0);
    free(b);
}

/* A Subscription as a client writes it at `version`. */
static uint8_t *subscription_at(int16_t version, size_t *len)
{
    kf_writer_t w;
    kw_init_plain(&w);
    kw_i16(&w, version);
    kw_i32(&w, 2);
    kw_str(&w, "orders");
    kw_str(&w, "audit");
    static const uint8_t user[] = {1, 2, 3};
    kw_bytes(&w, user, sizeof user);
    if (version >= 1) { /* owned_partitions: orders [0, 4] */
        kw_i32(&w, 1);
        kw_str(&w, "orders");
        kw_i32(&w, 2);
        kw_i32(&w, 0);
        kw_i32(&w, 4);
    }
    if (version >= 2) kw_i32(&w, 17); /* generation_id */
    if (version >= 3) kw_str(&w, "rack-a");
    return kw_take(&w, len);
}

static void test_versions(void)
{
    for (int16_t v = 0; v <= 3; v++) {
        size_t len;
        uint8_t *b = subscription_at(v, &len);
        CHECK_FATAL(b != NULL);
        char **t;
        size_t n;
        CHECK_EQ_INT(grp_subscription_decode(b, len, &t, &n), SL_OK);
        CHECK_EQ_INT(n, 2);
        if (n == 2) CHECK(strcmp(t[0], "orders") == 0 && strcmp(t[1], "audit") == 0);
        grp_strings_free(t, n);
        free(b);
    }

    /* Assignment v1..v3 are v0's fields; user_data is skipped. */
    for (int16_t v = 0; v <= 3; v++) {
        kf_writer_t w;
        kw_init_plain(&w);
        kw_i16(&w, v);
        kw_i32(&w, 1);
        kw_str(&w, "orders");
        kw_i32(&w, 1);
        kw_i32(&w, 3);
        kw_bytes(&w, (const uint8_t *)"u", 1);
        size_t len;
        uint8_t *b = kw_take(&w, &len);
        CHECK_FATAL(b != NULL);
        grp_assign_t a;
        CHECK_EQ_INT(grp_assignment_decode(b, len, &a), SL_OK);
        CHECK_EQ_INT(a.ntopics, 1);
        if (a.ntopics == 1)
            CHECK(strcmp(a.topics[0].topic, "orders") == 0 && a.topics[0].nparts == 1 &&
                  a.topics[0].parts[0] == 3);
        grp_assign_free(&a);
        free(b);
    }
}

static void test_malformed(void)
{
    char **t;
    size_t n;
    grp_assign_t a;
    /* a negative version, a null topic, a negative count, a count past the
     * bound */
    static const uint8_t neg_ver[] = {0xff, 0xff, 0, 0, 0, 0};
    static const uint8_t null_topic[] = {0, 0, 0, 0, 0, 1, 0xff, 0xff};
    static const uint8_t neg_cnt[] = {0, 0, 0xff, 0xff, 0xff, 0xff};
    CHECK_EQ_INT(grp_subscription_decode(neg_ver, sizeof neg_ver, &t, &n), SL_ERR_INVALID_REQUEST);
    CHECK(t == NULL && n == 0);
    CHECK_EQ_INT(grp_subscription_decode(null_topic, sizeof null_topic, &t, &n),
                 SL_ERR_INVALID_REQUEST);
    CHECK_EQ_INT(grp_subscription_decode(neg_cnt, sizeof neg_cnt, &t, &n), SL_ERR_INVALID_REQUEST);
    CHECK_EQ_INT(grp_assignment_decode(neg_ver, sizeof neg_ver, &a), SL_ERR_INVALID_REQUEST);
    grp_assign_free(&a);
    CHECK_EQ_INT(grp_assignment_decode(neg_cnt, sizeof neg_cnt, &a), SL_ERR_INVALID_REQUEST);
    grp_assign_free(&a);

    size_t big = GRP_MAX_TOPICS + 1, len;
    const char **many = calloc(big, sizeof *many);
    CHECK_FATAL(many != NULL);
    for (size_t i = 0; i < big; i++) many[i] = "t";
    uint8_t *b = grp_subscription_encode(many, big - 1, &len);
    CHECK_EQ_INT(grp_subscription_decode(b, len, &t, &n), SL_OK);
    CHECK_EQ_INT(n, GRP_MAX_TOPICS);
    grp_strings_free(t, n);
    free(b);
    b = grp_subscription_encode(many, big, &len);
    CHECK_EQ_INT(grp_subscription_decode(b, len, &t, &n), SL_ERR_INVALID_REQUEST);
    free(b);
    free(many);

    /* A partition count the bytes cannot hold. */
    static const uint8_t lie[] = {0, 0, 0, 0, 0, 1, 0, 1, 'x', 0, 0, 0, 3, 0, 0, 0, 1};
    CHECK_EQ_INT(grp_assignment_decode(lie, sizeof lie, &a), SL_ERR_INVALID_REQUEST);
    grp_assign_free(&a);

    /* Every cut of a v3 subscription inside its topics is refused; a cut
     * after them still decodes (later fields are not read). */
    uint8_t *v3 = subscription_at(3, &len);
    CHECK_FATAL(v3 != NULL);
    size_t topics_end = 2 + 4 + (2 + 6) + (2 + 5);
    for (size_t cut = 0; cut < len; cut++) {
        int rc = grp_subscription_decode(v3, cut, &t, &n);
        CHECK_EQ_INT(rc, cut < topics_end ? SL_ERR_INVALID_REQUEST : SL_OK);
        grp_strings_free(t, n);
    }
    free(v3);
}

int main(void)
{
    test_v0_bytes();
    test_versions();
    test_malformed();
    return check_exit();
}
