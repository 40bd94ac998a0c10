/* test_docs.c — keeps docs/storage.md true to storage/logconf.c: every
 * config key appears in its table with the default the code uses, and the
 * table names no key the code does not know. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "logconf.h"

int main(void)
{
    char *doc = check_slurp(SLUICE_SOURCE_DIR "/docs/storage.md");
    size_t n;
    const sl_log_conf_def_t *t = sl_log_conf_table(&n);
    for (size_t i = 0; i < n; i++) {
        char row[200];
        snprintf(row, sizeof row, "| `%s` | %lld", t[i].name, (long long)t[i].def);
        CHECK_MSG(strstr(doc, row) != NULL, "docs/storage.md lacks the row \"%s\"", row);
    }
    /* Every row of the config table names a known key. */
    const char *p = strstr(doc, "## Configuration");
    CHECK_FATAL(p != NULL);
    int rows = 0;
    while ((p = strstr(p, "\n| `")) != NULL) {
        p += 4;
        const char *end = strchr(p, '`');
        if (!end || end - p > 60) break;
        char key[64];
        memcpy(key, p, (size_t)(end - p));
        key[end - p] = 0;
        CHECK_MSG(sl_log_conf_find(key) != NULL, "docs/storage.md documents unknown key %s", key);
        rows++;
    }
    CHECK_EQ_INT(rows, (long long)n);
    free(doc);
    return check_exit();
}
