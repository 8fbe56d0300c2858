/* A small JSON reader for the C tests (written for this project, not vendored):
 * parses a whole document into a tree of json_value; enough for tests/conformance. */
#ifndef PEERLB_TEST_JSON_H
#define PEERLB_TEST_JSON_H

#include <stddef.h>

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_value {
    json_type type;
    int boolean;
    double number;
    char *string;              /* NUL-terminated (JSON_STRING) */
    size_t len;                /* string length, or item count for arrays and objects */
    struct json_value **items; /* array items, or object values */
    char **keys;               /* object keys (JSON_OBJECT) */
} json_value;

/* Parses text; NULL on error (with a message in err). Free with json_free. */
json_value *json_parse(const char *text, char *err, size_t errlen);
void json_free(json_value *v);
/* The member `key` of an object, or NULL (also when v is not an object). */
const json_value *json_get(const json_value *v, const char *key);
/* The string of `key`, or NULL when absent or not a string. */
const char *json_get_str(const json_value *v, const char *key);
/* Deep equality (numbers compare as doubles; object key order ignored). */
int json_equal(const json_value *a, const json_value *b);
/* Reads a whole file into a NUL-terminated buffer (caller frees), or NULL. */
char *json_read_file(const char *path);

#endif
