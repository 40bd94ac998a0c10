/* version.c — the library's version at run time. */
#include "internal.h"

SLUICE_API int sluice_version(void)
{
    return SLUICE_VERSION;
}

SLUICE_API const char *sluice_version_str(void)
{
    return "0.1.0";
}
