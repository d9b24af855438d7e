/* Stand-in for QEMU 4.2's qom/object.h (tests/qemu42): not QEMU code. */
#ifndef QEMU_OBJECT_H
#define QEMU_OBJECT_H
typedef struct TypeImpl *Type;
struct ObjectClass {
    Type type;
};
struct Object {
    ObjectClass *class;
    void *properties;
    uint32_t ref;
    Object *parent;
};
typedef struct InterfaceInfo {
    const char *type;
} InterfaceInfo;
typedef struct TypeInfo {
    const char *name;
    const char *parent;
    size_t instance_size;
    void (*instance_init)(Object *obj);
    void (*instance_post_init)(Object *obj);
    void (*instance_finalize)(Object *obj);
    bool abstract;
    size_t class_size;
    void (*class_init)(ObjectClass *klass, void *data);
    void (*class_base_init)(ObjectClass *klass, void *data);
    void *class_data;
    InterfaceInfo *interfaces;
} TypeInfo;
#define OBJECT(obj) ((Object *)(obj))
#define OBJECT_CLASS(class) ((ObjectClass *)(class))
Object *object_dynamic_cast_assert(Object *obj, const char *typename,
                                   const char *file, int line,
                                   const char *func);
ObjectClass *object_class_dynamic_cast_assert(ObjectClass *klass,
                                              const char *typename,
                                              const char *file, int line,
                                              const char *func);
#define OBJECT_CHECK(type, obj, name) \
    ((type *)object_dynamic_cast_assert(OBJECT(obj), (name), \
                                        __FILE__, __LINE__, __func__))
#define OBJECT_CLASS_CHECK(class_type, class, name) \
    ((class_type *)object_class_dynamic_cast_assert(OBJECT_CLASS(class), \
                                               (name), __FILE__, __LINE__, \
                                               __func__))
Type type_register_static(const TypeInfo *info);
/* 4.2: an Error ** last; 5.2 replaced it with ObjectPropertyFlags. */
void object_property_add_uint64_ptr(Object *obj, const char *name,
                                    const uint64_t *v, Error **errp);
/* 4.2: takes an Error **, and finds only class properties (qdev's are not) */
void object_class_property_set_description(ObjectClass *klass,
                                           const char *name,
                                           const char *description,
                                           Error **errp);
#endif
